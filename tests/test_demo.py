"""`make demo` runs the whole chain on loopback and exits 0."""

import subprocess
import sys

from generator.pipeline import REPO


def test_demo_runs_end_to_end():
    out = subprocess.run([sys.executable, "-m", "cedx.demo"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "签名有效，已切换 / signature valid, switched" in text
    assert "v1 superseded, v2 accepted" in text
    assert text.count("valid / ") == 3  # three receipts, each signed and time-stamped
    assert " XML " in text and " JSON " in text
    assert text.count("signature valid; receipt digest 一致 / matches") == 2
    assert text.count("signed batches, signatures valid, chain unbroken") == 2   # HJ 212 bridge step
    assert "done: services shut down" in text
    # issue 13: lab evidence with an attached report, a conservative substitution, agreement with the batches
    assert "by max_valid_same_day" in text and "attachment SM3" in text and "一致 / agree" in text
