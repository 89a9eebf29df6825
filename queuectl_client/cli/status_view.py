"""What `queuectl status` prints: counts by state, the fleet, why nothing runs, the daemon.

Without click, so that the command people type most can run without it
(cli/quick.py); the click command in fleet.py calls the same function.
"""

from __future__ import annotations

import time

from protocol.times import parse_iso
from queuectl_client.cli import terminal
from queuectl_client.cli.context import Settings, print_json
from queuectl_client.cli.format import duration, state_label
from queuectl_client.cli.terminal import echo
from queuectl_client.cli.waiting import NO_WORKERS, paused_queues, queue_blocker


def show_status(settings: Settings, as_json: bool) -> None:
    result = settings.client().status()
    if as_json:
        print_json(result)
        return
    jobs, workers, info = result["jobs"], result["workers"], result["daemon"]
    colour = terminal.colour_enabled()
    echo(
        "jobs:    "
        + "  ".join(
            terminal.paint_state(state, colour, f"{state_label(state)} {count}")
            for state, count in jobs.items()
        )
    )
    echo(
        f"workers: {workers['alive']} alive (target {workers['target']}), "
        f"{workers['busy']} busy, {workers['idle']} idle"
    )
    if workers.get("halted"):
        echo(f"         halted: {workers['halted']}")
    if workers.get("draining"):
        echo("         draining: no new job starts until `queuectl worker resume`")
    waiting = jobs["pending"] + jobs["failed"]
    if workers["target"] == 0:
        echo(f"note:    no job starts: {NO_WORKERS}; {waiting} job(s) waiting")
    for queue in paused_queues(settings.client().queue_list()):
        echo(f"note:    {queue_blocker(queue)}")
    for running in workers["running"]:
        echo(f"  worker {running['worker']}: job {running['job']} (pid {running['job_pid']})")
    echo(
        f"daemon:  pid {info['pid']}, queuectld {info['version']}, "
        f"up {duration(info['uptime'])}, home {info['home']}"
    )
    for line in daemon_lines(result.get("daemons", []), info.get("id")):
        echo(line)


def daemon_lines(daemons: list[dict], own_id: str | None) -> list[str]:
    """One line per daemon of the store (several when they share PostgreSQL)."""
    lines = []
    now = time.time()
    for daemon in daemons:
        fleet = daemon["workers"]
        workers = (
            "workers unknown"
            if fleet is None
            else f"{fleet['busy']} busy, {fleet['idle']} idle (target {fleet['target']})"
        )
        beat = duration(max(0.0, now - parse_iso(daemon["heartbeat_at"])))
        here = ", this daemon" if daemon["id"] == own_id else ""
        lines.append(
            f"  daemon {daemon['id']} on {daemon['host']} (pid {daemon['pid']}): "
            f"{workers}, heartbeat {beat} ago{here}"
        )
    return lines
