"""``py.typed`` is honest: an integrator's script type-checks under ``mypy --strict`` against the
package (concrete items from ``iter_*``, required query parameters, readable enum members, the
face's names), and a wrong use is caught (so the check really sees the package's types)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "typing"


def mypy(tmp_path, name):
    shutil.copy(HERE / name, tmp_path / name)
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "c"),
                           name], cwd=tmp_path, capture_output=True, text=True)


@pytest.fixture(autouse=True)
def needs_mypy():
    pytest.importorskip("mypy")


def test_an_integrators_script_passes_mypy_strict(tmp_path):
    out = mypy(tmp_path, "erp.py")
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_wrong_use_is_caught(tmp_path):
    out = mypy(tmp_path, "wrong.py")
    assert out.returncode == 1
    assert '"SubmissionStatus" has no attribute "no_such_field"' in out.stdout
    assert 'expression has type "SignedReceipt", variable has type "int"' in out.stdout
    assert '"ReportingClient" has no attribute "list_measurement_batches"' in out.stdout
