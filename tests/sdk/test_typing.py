"""``py.typed`` is honest: an integrator's script type-checks under ``mypy --strict`` against the
package (concrete items from ``iter_*``, required query parameters, readable enum members, the
face's names), and a wrong use is caught (so the check really sees the package's types)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "typing"


def test_an_integrators_script_passes_mypy_strict_and_a_wrong_use_is_caught(tmp_path):
    pytest.importorskip("mypy")
    for name in ("erp.py", "wrong.py"):
        shutil.copy(HERE / name, tmp_path / name)
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
                          str(tmp_path / "c"), "erp.py", "wrong.py"], cwd=tmp_path, capture_output=True, text=True)
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert errors and all(line.startswith("wrong.py:") for line in errors), out.stdout + out.stderr
    assert any('"SubmissionStatus" has no attribute "no_such_field"' in e for e in errors)
    assert any('expression has type "SignedReceipt", variable has type "int"' in e for e in errors)
    assert any('"ReportingClient" has no attribute "list_measurement_batches"' in e for e in errors)
