"""A small progress bar for long work (a month's pull, accounting, an inspection run).

It draws on standard error only when that is a terminal, so logs, pipes and CI stay clean;
``CEDX_PROGRESS=0`` turns it off, ``=1`` forces it on. The standard library is enough for one
line redrawn with ``\\r`` (no dependency). Use::

    with Progress(total=len(days), label="pull") as bar:
        for day in days:
            ...
            bar.advance(note=str(day))
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")


def enabled(stream: IO[str]) -> bool:
    choice = os.environ.get("CEDX_PROGRESS")
    if choice in ("0", "1"):
        return choice == "1"
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """``advance()`` per unit of work; redraws at most ten times a second; clears itself at
    the end. ``total=None`` shows a count without a bar."""

    def __init__(self, total: int | None, label: str = "", stream: IO[str] | None = None, width: int | None = None):
        self.total, self.label, self.done, self.note = total, label, 0, ""
        self.stream = stream if stream is not None else sys.stderr
        self.active = enabled(self.stream)
        self.width = width
        self._drawn = 0.0
        self._started = time.monotonic()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self.note = note or self.note
        now = time.monotonic()
        if self.active and (now - self._drawn >= 0.1 or self.done == self.total):
            self._drawn = now
            self.draw()

    def line(self) -> str:
        width = self.width or shutil.get_terminal_size((80, 20)).columns
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        head = f"{self.label} " if self.label else ""
        if self.total:
            cells = 24
            filled = min(cells, cells * self.done // self.total)
            head += f"[{'#' * filled}{'.' * (cells - filled)}] "
        text = f"{head}{count} {time.monotonic() - self._started:.0f}s {self.note}".rstrip()
        return text[: max(10, width - 1)]

    def draw(self) -> None:
        self.stream.write("\r\x1b[K" + self.line())
        self.stream.flush()

    def write(self, text: str) -> None:
        """A line of output above the bar (the bar is redrawn below it)."""
        if self.active:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        if self.active:
            self.draw()
        self.stream.flush()

    def close(self) -> None:
        if self.active:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def track(items: Iterable[T], total: int | None = None, label: str = "", stream: IO[str] | None = None) -> Iterator[T]:
    """Iterate with a progress bar (quiet when not a terminal)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, label, stream) as bar:
        for item in items:
            yield item
            bar.advance()
