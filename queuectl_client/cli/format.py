"""Human output: tables that fit the terminal, durations, job summaries."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime


def table(headers: Sequence[str], rows: list[Sequence[object]], stretch: int = -1) -> str:
    """Columns sized to their content; column `stretch` is cut to fit the terminal."""
    cells = [[str(c) if c is not None else "-" for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if rows and stretch is not None:
        total = sum(widths) + 2 * (len(widths) - 1)
        room = shutil.get_terminal_size((120, 24)).columns
        index = stretch % len(widths)
        if total > room:
            widths[index] = max(len(headers[index]), widths[index] - (total - room))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        fitted = [_fit(cell, w) for cell, w in zip(row, widths, strict=True)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(fitted, widths, strict=True)).rstrip())
    return "\n".join(lines)


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
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def job_rows(jobs: list[dict]) -> str:
    rows = [
        (
            j["id"],
            j["state"],
            f"{j['attempts']}/{j['max_retries'] + 1}",
            j["priority"],
            j["queue"],
            local_time(j["updated_at"]),
            j["command"],
        )
        for j in jobs
    ]
    return table(("ID", "STATE", "TRIES", "PRI", "QUEUE", "UPDATED", "COMMAND"), rows)
