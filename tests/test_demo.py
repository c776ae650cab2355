"""`make demo` runs the end-to-end job and exits 0."""

from cedx import demo


def test_demo_runs(capsys):
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "R-POW-001" in out and "rejected" in out and "valid per XSD): " in out
