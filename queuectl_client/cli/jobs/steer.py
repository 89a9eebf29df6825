"""Changing jobs after they were enqueued: `queuectl cancel`, `retry`, `edit`, `purge`."""

from __future__ import annotations

import click

from protocol.messages import TERMINAL_STATES
from protocol.times import parse_iso, to_iso
from queuectl_client.cli.completion import complete_job_ids
from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings, print_json
from queuectl_client.cli.parse import parse_duration

FINISHED_STATES = TERMINAL_STATES


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids(("pending", "failed", "processing")))
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
@pass_settings
def cancel(settings: Settings, job_id: str, as_json: bool) -> None:
    """Cancel a job: a waiting one never starts, a running one is killed. Never retried.

    \b
    Example:
      queuectl cancel job1
    """
    job = settings.client().cancel(job_id)
    if as_json:
        print_json(job)
        return
    click.echo(f"{job['id']}: {job['state']}")


@click.command()
@click.argument("job_id")
@pass_settings
def retry(settings: Settings, job_id: str) -> None:
    """Run a finished job (completed, dead or canceled) again; its history is kept.

    \b
    Example:
      queuectl retry job1
    """
    job = settings.client().retry(job_id)
    click.echo(f"{job['id']}: {job['state']}")


@click.command()
@click.argument("job_id")
@click.option("--command", "-c", help="New shell command.")
@click.option("--priority", type=int, help="New priority.")
@click.option("--run-at", help="New start time (ISO 8601; local time without offset).")
@click.option("--delay", type=click.FloatRange(min=0), help="Start S seconds from now.")
@click.option("--queue", help="Move to this queue.")
@click.option("--json", "as_json", is_flag=True, help="Print the changed job as JSON.")
@pass_settings
def edit(
    settings: Settings,
    job_id: str,
    command: str | None,
    priority: int | None,
    run_at: str | None,
    delay: float | None,
    queue: str | None,
    as_json: bool,
) -> None:
    """Change a pending job before it starts (refused once it has started).

    \b
    Examples:
      queuectl edit job1 --priority 10
      queuectl edit job1 --command 'make test-fast' --queue ci
    """
    changes: dict = {"command": command, "priority": priority, "delay": delay, "queue": queue}
    if run_at is not None:
        if delay is not None:
            fail("give --run-at or --delay, not both", EXIT_USAGE)
        try:
            changes["run_at"] = to_iso(parse_iso(run_at))
        except ValueError:
            fail(f"--run-at: {run_at!r} is not an ISO 8601 time", EXIT_USAGE)
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        fail("give at least one of --command, --priority, --run-at, --delay, --queue", EXIT_USAGE)
    job = settings.client().edit(job_id, **changes)
    if as_json:
        print_json(job)
    else:
        click.echo(f"{job['id']}: {job['state']}, queue {job['queue']}, priority {job['priority']}")


@click.command()
@click.option(
    "--state",
    type=click.Choice(FINISHED_STATES),
    required=True,
    help="Which finished jobs to delete.",
)
@click.option(
    "--older-than",
    required=True,
    metavar="DURATION",
    help="Only jobs that finished longer ago than this (90s, 15m, 12h, 7d, 2w).",
)
@click.option("--queue", help="Only jobs of this queue.")
@pass_settings
def purge(settings: Settings, state: str, older_than: str, queue: str | None) -> None:
    """Delete finished jobs, their history and their logs.

    \b
    Example:
      queuectl purge --state completed --older-than 7d
    """
    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        fail(f"--older-than: {exc}", EXIT_USAGE)
    count = settings.client().purge(state, seconds, queue)
    click.echo(f"purged {count} {state} job(s)")
