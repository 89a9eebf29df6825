"""`queuectl stats`: throughput, success rate and timing, per queue; `queuectl
events`: job state changes as they happen, from the `watch` stream."""

from __future__ import annotations

import json

import click

from queuectl_client.cli import terminal
from queuectl_client.cli.context import Settings, pass_settings, print_json
from queuectl_client.cli.format import duration, table


def register(cli: click.Group) -> None:
    cli.add_command(stats)
    cli.add_command(events)


@click.command()
@click.option("--queue", help="Only this queue.")
@click.option("--json", "as_json", is_flag=True, help="Print the daemon's figures as JSON.")
@pass_settings
def stats(settings: Settings, queue: str | None, as_json: bool) -> None:
    """Throughput over the last minute and hour, success rate, run and wait times.

    Run time is an attempt's duration; wait time runs from when it was due
    (enqueued, delay over, retry time reached) to when a worker started it.
    Percentiles cover the attempts that ended in the last hour.

    \b
    Examples:
      queuectl stats
      queuectl stats --queue builds --json
    """
    result = settings.client().stats(queue=queue)
    if as_json:
        print_json(result)
        return
    total = result["total"]
    for window, name in (("minute", "last minute"), ("hour", "last hour")):
        click.echo(f"{name + ':':<13}" + _window_summary(total, window))
    if not result["queues"]:
        return
    click.echo("")
    rows = [_row(name, figures) for name, figures in result["queues"].items()]
    if len(rows) > 1:
        rows.append(_row("(all)", total))
    headers = (
        "QUEUE", "DONE/1m", "DONE/1h", "FAILED/1h", "DEAD/1h", "SUCCESS",
        "RUN p50", "p90", "p99", "WAIT p50", "p90", "p99",
    )  # fmt: skip
    click.echo(table(headers, rows, stretch=0))
    if result["sampled"] >= result["sample_limit"]:
        click.echo(f"(percentiles from the latest {result['sample_limit']} attempts)")


@click.command()
@click.option("--queue", help="Only changes of jobs in this queue.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Every frame of the stream, snapshots too, as JSON lines.",
)
@pass_settings
def events(settings: Settings, queue: str | None, as_json: bool) -> None:
    """Print job state changes as they happen, one line each, until Ctrl-C.

    Each line is `ID STATE QUEUE`. The daemon pushes them (PROTOCOL.md `watch`);
    a line `dropped N` says the reader fell behind and N changes were lost.

    \b
    Examples:
      queuectl events
      queuectl events --queue builds | grep ' dead '
    """
    client = settings.client()
    try:
        for frame in client.watch():
            if as_json:
                click.echo(json.dumps(frame, separators=(",", ":")))
                continue
            if frame["type"] != "jobs":
                continue
            for job in frame["jobs"]:
                if queue is None or job["queue"] == queue:
                    click.echo(f"{job['id']} {job['state']} {job['queue'] or '-'}")
            if frame["dropped"]:
                click.echo(f"dropped {frame['dropped']}")
    finally:
        client.close()


def _window_summary(figures: dict, window: str) -> str:
    completed = figures["completed"][window]
    failed = figures["failed_attempts"][window]
    dead = figures["dead"][window]
    rate = figures["success_rate"][window]
    per_minute = figures["throughput_per_minute"][window]
    colour = terminal.colour_enabled()
    parts = [
        f"{completed} completed ({per_minute:g}/min)",
        terminal.paint(f"{failed} failed attempt(s)", "yellow" if failed else None, colour),
        terminal.paint(f"{dead} dead", "red" if dead else None, colour),
        f"success {_percent(rate)}",
    ]
    return ", ".join(parts)


def _row(name: str, figures: dict) -> tuple:
    run, wait = figures["run_seconds"], figures["wait_seconds"]
    return (
        name,
        figures["completed"]["minute"],
        figures["completed"]["hour"],
        figures["failed_attempts"]["hour"],
        figures["dead"]["hour"],
        _percent(figures["success_rate"]["hour"]),
        seconds(run["p50"]),
        seconds(run["p90"]),
        seconds(run["p99"]),
        seconds(wait["p50"]),
        seconds(wait["p90"]),
        seconds(wait["p99"]),
    )


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.1f}s"
    return duration(value)
