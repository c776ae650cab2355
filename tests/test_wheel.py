"""`pip wheel .` builds a wheel that installs into a clean venv and works without the
generator or templates (issue: pip-installable SDK)."""

import subprocess
import sys
import venv

import pytest

from generator.pipeline import REPO

SMOKE = r"""
import json, importlib.resources as r
import cedx, cedx.generated.models as m, cedx.generated.client, cedx.generated.xml as x
from cedx import spec, trust
assert (r.files("cedx") / "py.typed").is_file()
doc = json.loads((r.files("cedx.generated") / "openapi.json").read_text(encoding="utf-8"))
example = doc["paths"]["/v1/reporting/monthly-reports"]["post"]["requestBody"]["content"]["application/json"]["examples"]["power"]["value"]
assert spec.validator().validate("SignedMonthlyReport", example) == []
model = m.SignedMonthlyReport.model_validate(example)
assert x.from_xml(x.to_xml(model)) == model
assert (r.files("cedx.hj212") / "mapping.yaml").is_file()   # the bridge's table ships in the wheel
try:  # PyYAML only where needed at run time: the HJ 212 bridge, via cedx[server]
    import yaml  # noqa: F401
    raise SystemExit("PyYAML must not be a core dependency")
except ImportError:
    pass
key = trust.generate_private_key()
trust.verify_document(trust.sign_document(example["payload"], key), key.public_key())
try:
    import generator  # noqa: F401
    raise SystemExit("the generator must not be installed with the SDK")
except ImportError:
    pass
print("wheel ok", cedx.__version__)
"""


@pytest.mark.timeout_exempt
def test_wheel_installs_into_a_clean_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)], check=True)
    wheels = list(dist.glob("cedx-*.whl"))
    assert len(wheels) == 1
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheels[0])], check=True)
    out = subprocess.run([str(py), "-c", SMOKE], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "wheel ok" in out.stdout
    cli = subprocess.run([str(env_dir / "bin" / "cedx"), "keygen", "-o", str(tmp_path / "k.pem")], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
