import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cedx.trust.backends import NAMES, get_backend
from cedx.trust.errors import BackendUnavailable

VECTORS = Path(__file__).parent / "vectors"


def load_vectors(name: str) -> list[dict]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))["vectors"]


@pytest.fixture(params=NAMES)
def backend(request):
    try:
        return get_backend(request.param)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))


class OpenSSL:
    """Runs the OpenSSL command line in a scratch directory."""

    def __init__(self, workdir: Path):
        self.dir = workdir

    def path(self, name: str) -> Path:
        return self.dir / name

    def write(self, name: str, data: bytes) -> Path:
        p = self.dir / name
        p.write_bytes(data)
        return p

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def run(self, *args: str, check: bool = True, input: bytes | None = None):
        proc = subprocess.run(
            ["openssl", *args], cwd=self.dir, capture_output=True, input=input
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"openssl {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stderr.decode(errors='replace')}"
            )
        return proc


@pytest.fixture
def openssl(tmp_path):
    if shutil.which("openssl") is None:
        pytest.fail("the OpenSSL command line is required (.ci/run installs it)")
    return OpenSSL(tmp_path)
