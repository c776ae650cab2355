"""The progress bar draws only on a terminal (or when forced) and clears itself."""

import io

from cedx.progress import Progress, track


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_quiet_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("CEDX_PROGRESS", raising=False)
    out = io.StringIO()
    assert list(track(range(5), label="pull", stream=out)) == [0, 1, 2, 3, 4]
    assert out.getvalue() == ""
    with Progress(3, "x", stream=out) as bar:
        bar.write("a case passed")
    assert out.getvalue() == "a case passed\n"  # lines still go out, without control codes


def test_draws_and_clears_on_a_terminal(monkeypatch):
    monkeypatch.delenv("CEDX_PROGRESS", raising=False)
    out = Tty()
    with Progress(4, "pull", stream=out, width=80) as bar:
        for _ in range(4):
            bar.advance(note="2026-10")
        assert bar.line().startswith("pull [" + "#" * 24 + "] 4/4")
    assert "pull [" in out.getvalue() and out.getvalue().endswith("\r\x1b[K")
    monkeypatch.setenv("CEDX_PROGRESS", "0")
    quiet = Tty()
    list(track(range(3), stream=quiet))
    assert quiet.getvalue() == ""


def test_the_inspection_progress_lines_stay_the_same_off_a_terminal(capsys, monkeypatch):
    from cedx.inspect import runner

    monkeypatch.delenv("CEDX_PROGRESS", raising=False)
    for i in (1, 2):
        runner.main_progress(f"[{i}/2] 4.{i} PASS            a case")
    runner.main_progress("INCONCLUSIVE — unreachable: connection refused")
    assert capsys.readouterr().err.splitlines() == [
        "[1/2] 4.1 PASS            a case", "[2/2] 4.2 PASS            a case",
        "INCONCLUSIVE — unreachable: connection refused"]
