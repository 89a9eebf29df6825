"""Human output: tables that fit the terminal, durations, job summaries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from queuectl_client.cli import terminal


def table(
    headers: Sequence[str],
    rows: list[Sequence[object]],
    stretch: int = -1,
    styles: dict[int, Callable[[str], str]] | None = None,
    max_width: int | None | Literal["auto"] = "auto",
) -> str:
    """Columns sized to their content, fitted to the terminal width.

    Column `stretch` gives up room first, then the widest others, never below
    their header; a cut cell ends in '…'. In a pipe nothing is cut (see
    terminal.width). `styles` colours the cells of a column after fitting, so
    escape codes never count as width.
    """
    cells = [[str(c) if c is not None else "-" for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    room = terminal.width() if max_width == "auto" else max_width
    if rows and room is not None:
        _fit_widths(widths, headers, room, stretch % len(widths) if stretch is not None else None)
    styles = styles or {}
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        parts = []
        for i, (cell, w) in enumerate(zip(row, widths, strict=True)):
            fitted = _fit(cell, w)
            styled = styles[i](fitted) if i in styles else fitted
            parts.append(styled + " " * (w - len(fitted)))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _fit_widths(widths: list[int], headers: Sequence[str], room: int, first: int | None) -> None:
    excess = sum(widths) + 2 * (len(widths) - 1) - room
    order = ([first] if first is not None else []) + sorted(
        (i for i in range(len(widths)) if i != first), key=lambda i: -widths[i]
    )
    for index in order:
        if excess <= 0:
            return
        floor = max(len(headers[index]), 3)
        give = min(excess, max(0, widths[index] - floor))
        widths[index] -= give
        excess -= give


def _fit(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def local_time(iso: str | None) -> str:
    if not iso:
        return "-"
    # Here, not at the top: `status` and `enqueue` print no time and start without it.
    from datetime import datetime

    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# The protocol's `failed` is a job whose retry is scheduled; in pueue and
# task-spooler "failed" is final, so what people read says what it means.
STATE_LABELS = {"failed": "retrying"}
LABEL_STATES = {label: state for state, label in STATE_LABELS.items()}


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)


def job_state(job: dict) -> str:
    """The state of a job for a table: a retry-waiting one with the time of its retry."""
    if job["state"] == "failed":
        return f"retrying at {short_time(job['run_at'])}"
    return job["state"]


def paint_label(text: str, colour: bool) -> str:
    """Colour a (possibly cut) state cell by the state it names."""
    first = text.rstrip("…").split(" ")[0]
    return terminal.paint_state(LABEL_STATES.get(first, first), colour, text)


def tries(attempts: int, max_retries: int, state: str, sep: str = "/") -> str:
    """Attempts started out of attempts allowed; a running attempt has started, so the
    same job reads the same here as in `top`."""
    started = attempts + (1 if state == "processing" else 0)
    return f"{started}{sep}{max_retries + 1}"


def short_time(iso: str) -> str:
    """Local time of day, with the date only when it is not today."""
    from datetime import datetime

    text = local_time(iso)
    today = datetime.now().strftime("%Y-%m-%d ")
    return text.removeprefix(today)


def job_rows(jobs: list[dict]) -> str:
    colour = terminal.colour_enabled()
    rows = [
        (
            j["id"],
            job_state(j),
            tries(j["attempts"], j["max_retries"], j["state"]),
            j["priority"],
            j["queue"],
            local_time(j["updated_at"]),
            j["command"],
        )
        for j in jobs
    ]
    return table(
        ("ID", "STATE", "TRIES", "PRI", "QUEUE", "UPDATED", "COMMAND"),
        rows,
        styles={1: lambda text: paint_label(text, colour)},
    )
