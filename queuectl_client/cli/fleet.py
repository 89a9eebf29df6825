"""The fleet (PROTOCOL.md 8.4): `queuectl status`, and `queuectl worker
start|stop|drain|resume`."""

from __future__ import annotations

import time

import click

from protocol.times import parse_iso
from queuectl_client.cli import terminal
from queuectl_client.cli.context import Settings, fail, pass_settings, print_json
from queuectl_client.cli.format import duration, state_label
from queuectl_client.cli.top import run_live_view, watch_options
from queuectl_client.cli.waiting import NO_WORKERS, paused_queues, queue_blocker


def register(cli: click.Group) -> None:
    cli.add_command(status)
    cli.add_command(worker)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--watch", "-w", is_flag=True, help="Live view, refreshed in place (as `top`).")
@watch_options
@pass_settings
def status(
    settings: Settings, as_json: bool, watch: bool, interval: float, count: int | None
) -> None:
    """Summary of jobs by state, the worker fleet and the daemon.

    \b
    Examples:
      queuectl status --json
      queuectl status --watch
    """
    if watch:
        run_live_view(settings, interval, count, as_json)
        return
    result = settings.client().status()
    if as_json:
        print_json(result)
        return
    jobs, workers, info = result["jobs"], result["workers"], result["daemon"]
    colour = terminal.colour_enabled()
    click.echo(
        "jobs:    "
        + "  ".join(
            terminal.paint_state(state, colour, f"{state_label(state)} {count}")
            for state, count in jobs.items()
        )
    )
    click.echo(
        f"workers: {workers['alive']} alive (target {workers['target']}), "
        f"{workers['busy']} busy, {workers['idle']} idle"
    )
    if workers.get("halted"):
        click.echo(f"         halted: {workers['halted']}")
    if workers.get("draining"):
        click.echo("         draining: no new job starts until `queuectl worker resume`")
    waiting = jobs["pending"] + jobs["failed"]
    if workers["target"] == 0:
        click.echo(f"note:    no job starts: {NO_WORKERS}; {waiting} job(s) waiting")
    for queue in paused_queues(settings.client().queue_list()):
        click.echo(f"note:    {queue_blocker(queue)}")
    for running in workers["running"]:
        click.echo(f"  worker {running['worker']}: job {running['job']} (pid {running['job_pid']})")
    click.echo(
        f"daemon:  pid {info['pid']}, queuectld {info['version']}, "
        f"up {duration(info['uptime'])}, home {info['home']}"
    )
    for line in daemon_lines(result.get("daemons", []), info.get("id")):
        click.echo(line)


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


@click.group()
def worker() -> None:
    """Start, resize or stop the worker fleet."""


@worker.command()
@click.option(
    "--count",
    "-n",
    type=click.IntRange(min=0),
    default=None,
    help="Number of workers (the fleet grows or shrinks to it). Default: keep the "
    "current size, or start a stopped fleet at its saved size (1 if none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def start(settings: Settings, count: int | None, as_json: bool) -> None:
    """Set the fleet to COUNT workers; the size survives daemon restarts.

    Shrinking is graceful: surplus workers finish their job first. Without
    --count the fleet is never shrunk; a halted fleet tries again.

    \b
    Examples:
      queuectl worker start --count 3
      queuectl worker start
    """
    result = settings.client().scale_workers(count)
    if as_json:
        print_json(result)
        return
    click.echo(f"workers: {result['target']}")


@worker.command()
@click.option("--now", is_flag=True, help="Kill running jobs; they go back to pending.")
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting for workers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def stop(settings: Settings, now: bool, no_wait: bool, as_json: bool) -> None:
    """Stop all workers: no new jobs start; running jobs finish (or, with --now, are requeued).

    \b
    Example:
      queuectl worker stop
    """
    result = settings.client().stop_workers(now=now, wait=not no_wait)
    if as_json:
        print_json(result)
        return
    busy = result["was_busy"]
    if no_wait:
        click.echo(
            f"stopping: {busy} running job(s) will {'be requeued' if now else 'finish'} first"
        )
    elif now:
        click.echo(f"workers stopped; {busy} running job(s) were interrupted and requeued")
    else:
        click.echo(f"workers stopped; {busy} running job(s) finished first")


@worker.command()
@click.option("--wait", is_flag=True, help="Return once no job is running any more.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up waiting after S seconds.")
@pass_settings
def drain(settings: Settings, wait: bool, timeout: float | None) -> None:
    """Start no new job; running jobs finish; enqueues are still accepted (for deploys).

    The drain persists across daemon restarts until `worker resume` or `worker start`.

    \b
    Example:
      queuectl worker drain --wait
    """
    result = settings.client().drain(wait=wait, timeout=timeout)
    running = result["running"]
    if wait and running:
        fail(f"draining; {running} job(s) still running after {timeout:g} s")
    click.echo(f"draining: no new jobs start; {running} job(s) running")


@worker.command()
@pass_settings
def resume(settings: Settings) -> None:
    """End a drain: jobs start again.

    \b
    Example:
      queuectl worker resume
    """
    settings.client().resume_workers()
    click.echo("workers resumed: jobs start again")
