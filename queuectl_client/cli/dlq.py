"""`queuectl dlq`: the dead letter queue, jobs that used up their retries."""

from __future__ import annotations

import click

from queuectl_client.cli.completion import complete_job_ids
from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings, print_json
from queuectl_client.cli.format import job_rows


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
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of the requeued ids.")
@pass_settings
def dlq_retry(settings: Settings, job_id: str | None, retry_all: bool, as_json: bool) -> None:
    """Send a dead job (or all of them) back to pending with fresh retries.

    \b
    Examples:
      queuectl dlq retry job1
      queuectl dlq retry --all
    """
    if (job_id is None) == (not retry_all):
        fail("give a JOB_ID or --all", EXIT_USAGE)
    ids = settings.client().dlq_retry(job_id, all=retry_all)
    if as_json:
        print_json(ids)
        return
    for retried in ids:
        click.echo(retried)
    if retry_all:
        click.echo(f"{len(ids)} job(s) requeued", err=True)
