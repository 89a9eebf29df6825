"""What the output is going to: a terminal (width, colour) or a pipe (neither).

Colour only on a terminal, and never when NO_COLOR is set to anything
(no-color.org); tables are fitted to the terminal width, or to $COLUMNS when
set, and left whole in a pipe so scripts get every character.
"""

from __future__ import annotations

import codecs
import os
import shutil
import sys
from typing import IO

STATE_COLOURS = {
    "pending": "blue",
    "processing": "cyan",
    "completed": "green",
    "failed": "yellow",
    "dead": "red",
    "canceled": "magenta",
}


def is_terminal(stream: IO | None = None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour_enabled(stream: IO | None = None) -> bool:
    return is_terminal(stream) and not os.environ.get("NO_COLOR")


def width(stream: IO | None = None) -> int | None:
    """Columns to fit in: $COLUMNS, else the terminal's; None for a pipe (no limit)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if is_terminal(stream):
        return shutil.get_terminal_size((80, 24)).columns
    return None


def height(stream: IO | None = None) -> int:
    lines = os.environ.get("LINES", "")
    if lines.isdigit() and int(lines) > 0:
        return int(lines)
    return shutil.get_terminal_size((80, 24)).lines


# The codes click.style writes for these colours (tests/test_cli.py compares them):
# spelled out here so that the commands that print without click do not load it.
_FOREGROUND = {
    "red": 31,
    "green": 32,
    "yellow": 33,
    "blue": 34,
    "magenta": 35,
    "cyan": 36,
}


def paint(text: str, colour: str | None, enabled: bool, bold: bool = False) -> str:
    if not enabled or (colour is None and not bold):
        return text
    start = f"\x1b[{_FOREGROUND[colour]}m" if colour is not None else ""
    return start + ("\x1b[1m" if bold else "") + text + "\x1b[0m"


def echo(message: str = "", err: bool = False) -> None:
    """click.echo for text: one line to stdout (or stderr), flushed."""
    stream = sys.stderr if err else sys.stdout
    if not message.isascii() and _ascii_only(stream):
        # click writes UTF-8 to a stream set up for ASCII (PYTHONIOENCODING=ascii):
        # it says the same here as through any other command.
        import click

        click.echo(message, err=err)
        return
    stream.write(message + "\n")
    stream.flush()


def _ascii_only(stream: IO) -> bool:
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "ascii"
    except LookupError:
        return False


def paint_state(state: str, enabled: bool, text: str | None = None) -> str:
    return paint(text if text is not None else state, STATE_COLOURS.get(state), enabled)
