"""`queuectl dlq`: the dead letter queue, jobs that used up their retries."""

from __future__ import annotations

import click

from queuectl_client.cli.completion import complete_job_ids
from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings, print_json
from queuectl_client.cli.format import job_rows
from queuectl_client.cli.parse import parse_since


def register(cli: click.Group) -> None:
    cli.add_command(dlq)


@click.group()
def dlq() -> None:
    """Inspect and retry dead jobs."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(min=1), help="At most N jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of job records.")
@pass_settings
def dlq_list(settings: Settings, limit: int | None, as_json: bool) -> None:
    """List dead jobs with their last error.

    \b
    Example:
      queuectl dlq list
    """
    jobs = settings.client().dlq_list(limit=limit)
    if as_json:
        print_json(jobs)
    elif jobs:
        click.echo(job_rows(jobs))
        for job in jobs:
            click.echo(f"{job['id']}: {job['last_error']}")
    else:
        click.echo("the DLQ is empty")


@dlq.command("retry")
@click.argument("job_id", required=False, shell_complete=complete_job_ids(("dead",)))
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead job.")
@click.option("--queue", help="With --all: only dead jobs of this queue.")
@click.option(
    "--since",
    metavar="TIME",
    help="With --all: only jobs that died since TIME (ISO 8601, or a duration ago: 1h, 2d).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of the requeued ids.")
@pass_settings
def dlq_retry(
    settings: Settings,
    job_id: str | None,
    retry_all: bool,
    queue: str | None,
    since: str | None,
    as_json: bool,
) -> None:
    """Send a dead job (or all of them) back to pending with fresh retries.

    \b
    Examples:
      queuectl dlq retry job1
      queuectl dlq retry --all
      queuectl dlq retry --all --queue emails --since 2h
    """
    if (job_id is None) == (not retry_all):
        fail("give a JOB_ID or --all", EXIT_USAGE)
    if job_id is not None and (queue is not None or since is not None):
        fail("--queue and --since go with --all", EXIT_USAGE)
    if since is not None:
        try:
            since = parse_since(since)
        except ValueError as exc:
            fail(f"--since: {exc}", EXIT_USAGE)
    ids = settings.client().dlq_retry(job_id, all=retry_all, queue=queue, since=since)
    if as_json:
        print_json(ids)
        return
    for retried in ids:
        click.echo(retried)
    if retry_all:
        click.echo(f"{len(ids)} job(s) requeued", err=True)


@dlq.command("purge")
@click.argument("job_id", required=False)
@click.option("--all", "purge_all", is_flag=True, help="Delete every dead job.")
@pass_settings
def dlq_purge(settings: Settings, job_id: str | None, purge_all: bool) -> None:
    """Delete a dead job (or all of them) for good, with its history and logs.

    \b
    Examples:
      queuectl dlq purge job1
      queuectl dlq purge --all
    """
    if (job_id is None) == (not purge_all):
        fail("give a JOB_ID or --all", EXIT_USAGE)
    ids = settings.client().dlq_purge(job_id, all=purge_all)
    for purged in ids:
        click.echo(purged)
    if purge_all:
        click.echo(f"{len(ids)} job(s) purged", err=True)
