"""`queuectl worker start|stop`: size of the worker fleet."""

from __future__ import annotations

import click

from queuectl_client.cli.context import Settings, pass_settings, print_json


def register(cli: click.Group) -> None:
    cli.add_command(worker)


@click.group()
def worker() -> None:
    """Start, resize or stop the worker fleet."""


@worker.command()
@click.option(
    "--count",
    "-n",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Number of workers (the fleet grows or shrinks to it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def start(settings: Settings, count: int, as_json: bool) -> None:
    """Set the fleet to COUNT workers; the size survives daemon restarts.

    Shrinking is graceful: surplus workers finish their job first.

    \b
    Example:
      queuectl worker start --count 3
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
