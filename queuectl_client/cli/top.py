"""`queuectl top` (also `queuectl status --watch`): a live view of the queue.

On a terminal the view is redrawn in place on the alternate screen, like
top(1); `q` or Ctrl-C quits. In a pipe each refresh is printed in full after
the last, and with --json each refresh is one JSON object on one line, so a
script can follow the daemon without parsing text.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import click

from protocol.schema import MAX_SECONDS
from protocol.times import parse_iso
from queuectl_client.cli import terminal
from queuectl_client.cli.context import Settings, pass_settings
from queuectl_client.cli.format import duration, state_label, table

NEXT_JOBS = 10


def register(cli: click.Group) -> None:
    cli.add_command(top)


def watch_options(function):
    function = click.option(
        "--interval",
        "-n",
        # Without a maximum, 1e400 (infinity) would reach time.sleep.
        type=click.FloatRange(min=0.1, max=MAX_SECONDS),
        default=1.0,
        show_default=True,
        help="Seconds between refreshes.",
    )(function)
    function = click.option("--count", type=click.IntRange(min=1), help="Stop after N refreshes.")(
        function
    )
    return function


@click.command()
@watch_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per refresh, per line.")
@pass_settings
def top(settings: Settings, interval: float, count: int | None, as_json: bool) -> None:
    """Live view: jobs by state, every worker with its job, CPU and memory, next jobs due.

    \b
    Examples:
      queuectl top
      queuectl top --json --count 1
    """
    run_live_view(settings, interval, count, as_json)


def run_live_view(settings: Settings, interval: float, count: int | None, as_json: bool) -> None:
    client = settings.client()
    cpu = CpuMeter()
    interactive = terminal.is_terminal(sys.stdout) and not as_json
    frames = 0
    with _screen(interactive) as keys:
        while True:
            status = client.status(next=NEXT_JOBS, processes=True)
            status["cpu_percent"] = cpu.update(status)
            frames += 1
            if as_json:
                click.echo(json.dumps(status, separators=(",", ":")))
            else:
                lines = render(
                    status,
                    width=terminal.width(sys.stdout),
                    colour=terminal.colour_enabled(sys.stdout),
                )
                if interactive:
                    _draw(lines[: max(1, terminal.height(sys.stdout) - 1)])
                else:
                    click.echo("\n".join(lines) + "\n")
            if count is not None and frames >= count:
                return
            if keys.wait(interval):
                return


class CpuMeter:
    """CPU % of each running job, from the CPU seconds the daemon reports at each refresh."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[float, float]] = {}

    def update(self, status: dict) -> dict[str, float]:
        now = time.monotonic()
        seen: dict[int, tuple[float, float]] = {}
        percent: dict[str, float] = {}
        for row in status["workers"].get("list", []):
            job = row.get("job")
            usage = job and job.get("usage")
            if not usage or not job.get("pid"):
                continue
            pid = job["pid"]
            seen[pid] = (usage["cpu_seconds"], now)
            if pid in self._last:
                before, then = self._last[pid]
                if now > then:
                    percent[job["id"]] = round(
                        100 * (usage["cpu_seconds"] - before) / (now - then), 1
                    )
        self._last = seen
        return percent


def render(status: dict, width: int | None, colour: bool) -> list[str]:
    info, jobs, workers = status["daemon"], status["jobs"], status["workers"]
    clock = datetime.now().strftime("%H:%M:%S")
    lines = [
        terminal.paint(f"queuectld {info['version']}", None, colour, bold=True)
        + f"  pid {info['pid']}  up {duration(info['uptime'])}  {clock}"
        + ("  STOPPING" if info.get("stopping") else ""),
        "jobs:    "
        + "  ".join(
            terminal.paint_state(s, colour, f"{state_label(s)} {n}") for s, n in jobs.items()
        ),
        f"workers: {workers['alive']} alive (target {workers['target']}), "
        f"{workers['busy']} busy, {workers['idle']} idle",
        "",
    ]
    cpu = status.get("cpu_percent", {})
    rows = []
    for row in workers.get("list", []):
        job = row["job"] or {}
        usage = job.get("usage") or {}
        rows.append(
            (
                row["worker"],
                row["pid"],
                row["state"],
                job.get("id"),
                f"{job['attempt']}/{job['max_attempts']}" if job else None,
                duration(job["run_seconds"]) if job else None,
                f"{cpu[job['id']]:.1f}" if job and job["id"] in cpu else None,
                _size(usage.get("rss_bytes")),
                job.get("pid"),
                job.get("command"),
            )
        )
    if rows:
        headers = ("WORKER", "PID", "STATE", "JOB", "TRY", "RUNTIME", "CPU%", "RSS", "JOB PID",
                   "COMMAND")  # fmt: skip
        lines += table(headers, rows, max_width=width).splitlines()
    else:
        lines.append("no workers (queuectl worker start --count N)")
    lines.append("")
    upcoming = status.get("next") or []
    if upcoming:
        now = time.time()
        rows = [
            (
                job["id"],
                _due(parse_iso(job["run_at"]) - now),
                state_label(job["state"]),
                job["queue"],
                job["priority"],
                job["command"],
            )
            for job in upcoming
        ]
        lines += table(
            ("NEXT", "DUE", "STATE", "QUEUE", "PRI", "COMMAND"), rows, max_width=width
        ).splitlines()
    else:
        lines.append("nothing waiting")
    if width is not None:
        lines = [_cut(line, width) for line in lines]
    return lines


def _due(seconds: float) -> str:
    return "now" if seconds <= 0 else f"in {duration(seconds)}"


def _size(value: int | None) -> str | None:
    if value is None:
        return None
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return None


def _cut(line: str, width: int) -> str:
    """Cut a line to the width, counting only visible characters (not colour codes)."""
    visible, out, i = 0, [], 0
    while i < len(line):
        if line[i] == "\x1b":
            end = line.find("m", i)
            if end != -1:
                out.append(line[i : end + 1])
                i = end + 1
                continue
        if visible >= width:
            break
        out.append(line[i])
        visible += 1
        i += 1
    return "".join(out)


def _draw(lines: list[str]) -> None:
    sys.stdout.write("\x1b[H" + "\x1b[K\n".join(lines) + "\x1b[K\n\x1b[J")
    sys.stdout.flush()


class _Keys:
    """Waits between refreshes; True when the user asked to quit (q, Q or Ctrl-C)."""

    def __init__(self, fd: int | None):
        self.fd = fd

    def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.fd is None:
                time.sleep(left)
                return False
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                key = os.read(self.fd, 32)
                if not key or key[:1] in (b"q", b"Q", b"\x03"):
                    return True


@contextmanager
def _screen(interactive: bool) -> Iterator[_Keys]:
    """The alternate screen and cbreak input on a terminal; restored on the way out."""
    if not interactive:
        yield _Keys(None)
        return
    stdin_fd = sys.stdin.fileno() if terminal.is_terminal(sys.stdin) else None
    saved = None
    if stdin_fd is not None:
        import termios
        import tty

        saved = termios.tcgetattr(stdin_fd)
        tty.setcbreak(stdin_fd)
    sys.stdout.write("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J")
    sys.stdout.flush()
    try:
        yield _Keys(stdin_fd)
    except KeyboardInterrupt:
        pass
    finally:
        sys.stdout.write("\x1b[?25h\x1b[?1049l")
        sys.stdout.flush()
        if saved is not None:
            import termios

            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
