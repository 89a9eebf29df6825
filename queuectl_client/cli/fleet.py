"""The fleet (PROTOCOL.md 8.4): `queuectl status`, and `queuectl worker
start|stop|drain|resume`."""

from __future__ import annotations

import click

from queuectl_client.cli.context import Settings, fail, pass_settings, print_json
from queuectl_client.cli.status_view import show_status
from queuectl_client.cli.top import run_live_view, watch_options


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
    show_status(settings, as_json)


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
