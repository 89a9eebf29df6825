"""The overview's chart of the last hour: attempts ended per minute, completed and
failed, from the daemon's own run history (`stats` with `per_minute`), so the
chart is the same whenever the dashboard was started and whoever looks."""

from __future__ import annotations

from protocol.times import parse_iso


def bars(per_minute: list[dict], width: int = 600, height: int = 60) -> list[dict]:
    """One bar per minute, oldest first, scaled to the busiest: x, and the heights of
    the completed and the failed part, with a title for the pointer."""
    busiest = max((m["completed"] + m["failed"] for m in per_minute), default=0) or 1
    step = width / max(len(per_minute), 1)
    drawn = []
    for i, minute in enumerate(per_minute):
        done_h = height * minute["completed"] / busiest
        fail_h = height * minute["failed"] / busiest
        drawn.append(
            {
                "x": round(i * step, 1),
                "w": round(step * 0.8, 1),
                "done_y": round(height - done_h, 1),
                "done_h": round(done_h, 1),
                "fail_y": round(height - done_h - fail_h, 1),
                "fail_h": round(fail_h, 1),
                "start": parse_iso(minute["start"]),
                "completed": minute["completed"],
                "failed": minute["failed"],
            }
        )
    return drawn


def totals(per_minute: list[dict]) -> tuple[int, int]:
    return sum(m["completed"] for m in per_minute), sum(m["failed"] for m in per_minute)
