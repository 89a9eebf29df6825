"""A progress bar on stderr, drawn only when stderr is a terminal.

In a pipe or a log file it prints nothing at all, so scripts see only the
command's real output. Redraws are limited to a few per second.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from queuectl_client.cli import terminal

REDRAW_SECONDS = 0.1


class Progress:
    def __init__(self, total: int | None, label: str, unit: str = "", stream: IO | None = None):
        """`total` None: the size is unknown, so only the count is shown."""
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = terminal.is_terminal(self.stream)
        self.done = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        self.stream.write("\r" + self.render(terminal.width(self.stream) or 80) + "\x1b[K")
        self.stream.flush()

    def render(self, columns: int) -> str:
        elapsed = _clock(time.monotonic() - self.started)
        if not self.total:
            return f"{self.label} {self.done}{self.unit} {elapsed}"[:columns]
        fraction = min(1.0, self.done / self.total)
        counts = f" {self.done}/{self.total}{self.unit} {fraction:4.0%} {elapsed}"
        bar_width = max(10, min(40, columns - len(self.label) - len(counts) - 3))
        filled = int(bar_width * fraction)
        bar = "#" * filled + "-" * (bar_width - filled)
        return f"{self.label} [{bar}]{counts}"[:columns]

    def finish(self) -> None:
        """Draw the final state, then clear the line for what is printed next."""
        if not self.enabled:
            return
        self.update(self.done, force=True)
        self.stream.write("\r\x1b[K")
        self.stream.flush()

    def __enter__(self) -> Progress:
        self.update(0, force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"
