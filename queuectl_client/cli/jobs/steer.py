"""Changing jobs after they were enqueued: `queuectl cancel`, `retry`, `edit`, `purge`."""

from __future__ import annotations

import sys

import click

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import TERMINAL_STATES
from protocol.times import parse_iso, to_iso
from queuectl_client.cli.completion import complete_job_ids
from queuectl_client.cli.context import (
    EXIT_REFUSED,
    EXIT_USAGE,
    Settings,
    fail,
    pass_settings,
    print_json,
)
from queuectl_client.cli.parse import parse_duration

FINISHED_STATES = TERMINAL_STATES


WAITING_OR_RUNNING = ("pending", "failed", "processing")


def _selection_options(states: tuple[str, ...], all_help: str, state_help: str):
    """The arguments of a command that acts on jobs given by id or by --all with
    filters (cancel, retry): job ids, --all, --state, --queue, --json."""
    options = [
        click.argument("job_ids", nargs=-1, shell_complete=complete_job_ids(states)),
        click.option("--all", "all_jobs", is_flag=True, help=all_help),
        click.option(
            "--state", "states", multiple=True, type=click.Choice(states), help=state_help
        ),
        click.option("--queue", help="With --all: only jobs of this queue."),
        click.option("--json", "as_json", is_flag=True, help="Print the job record(s) as JSON."),
        pass_settings,
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _selection(
    client,
    job_ids: tuple[str, ...],
    all_jobs: bool,
    states: tuple[str, ...],
    queue: str | None,
    every_state: tuple[str, ...],
) -> list[str]:
    """The ids to act on: those given, or with --all those the filters select."""
    if all_jobs and job_ids:
        fail("give job ids or --all, not both", EXIT_USAGE)
    if not all_jobs and not job_ids:
        fail("give one or more job ids, or --all", EXIT_USAGE)
    if not all_jobs:
        if states or queue is not None:
            fail("--state and --queue go with --all", EXIT_USAGE)
        return list(dict.fromkeys(job_ids))
    wanted = list(states or every_state)
    jobs = client.list_jobs(state=wanted if len(wanted) > 1 else wanted[0], queue=queue)
    return [job["id"] for job in jobs]


def _act_on_each(ids: list[str], act, lenient: bool) -> tuple[list[dict], bool]:
    """Act on every id, whatever happens to the others: the records of those that
    worked, and whether any failed (each failure is one line on stderr).

    With `lenient` (the jobs came from --all), a job that moved on between the
    listing and the act, such as a dependent canceled with its dependency, is
    skipped rather than an error.
    """
    done, failed = [], False
    for job_id in ids:
        try:
            done.append(act(job_id))
        except ProtocolError as exc:
            if lenient and exc.code in (ErrorCode.CONFLICT, ErrorCode.NOT_FOUND):
                continue
            click.echo(f"queuectl: {exc.code.value}: {exc.message}", err=True)
            failed = True
    return done, failed


def _report(records: list[dict], failed: bool, as_json: bool, single: bool, summary: str) -> None:
    if as_json:
        # One id gives its record, as before there were several; a refused one, none.
        if not single:
            print_json(records)
        elif records:
            print_json(records[0])
    else:
        for job in records:
            click.echo(f"{job['id']}: {job['state']}")
        if summary:
            click.echo(summary.format(count=len(records)))
    if failed:
        sys.exit(EXIT_REFUSED)


@click.command()
@_selection_options(
    WAITING_OR_RUNNING,
    all_help="Every waiting or running job (see --state).",
    state_help="With --all: only jobs in this state (repeatable; default all three).",
)
def cancel(
    settings: Settings,
    job_ids: tuple[str, ...],
    all_jobs: bool,
    states: tuple[str, ...],
    queue: str | None,
    as_json: bool,
) -> None:
    """Cancel jobs: a waiting one never starts, a running one is killed. Never retried.

    Each job is reported on its own line. A job that cannot be canceled (no
    such job, already finished) is one error line on stderr; the others are
    still canceled, and the exit code is 1. With --all, jobs that finish (or
    are canceled with a dependency) while the command runs are skipped.
    --json prints the record of one job given, else an array.

    \b
    Examples:
      queuectl cancel job1 job2
      queuectl cancel --all --queue emails --state pending
    """
    client = settings.client()
    ids = _selection(client, job_ids, all_jobs, states, queue, WAITING_OR_RUNNING)
    records, failed = _act_on_each(ids, client.cancel, lenient=all_jobs)
    summary = "canceled {count} job(s)" if all_jobs else ""
    _report(records, failed, as_json, len(job_ids) == 1, summary)


@click.command()
@_selection_options(
    FINISHED_STATES,
    all_help="Every finished job in the --state given.",
    state_help="With --all (required there): only jobs in this state (repeatable).",
)
def retry(
    settings: Settings,
    job_ids: tuple[str, ...],
    all_jobs: bool,
    states: tuple[str, ...],
    queue: str | None,
    as_json: bool,
) -> None:
    """Run finished jobs (completed, dead or canceled) again; their history is kept.

    As with cancel, each job is reported on its own line, a job that cannot be
    retried is an error line on stderr while the others are still retried, and
    the exit code is then 1. --all needs --state, so that no finished job is
    run again by accident.

    \b
    Examples:
      queuectl retry job1 job2
      queuectl retry --all --state canceled --queue ci
    """
    if all_jobs and not states:
        fail("--all needs --state (completed, dead or canceled)", EXIT_USAGE)
    client = settings.client()
    ids = _selection(client, job_ids, all_jobs, states, queue, FINISHED_STATES)
    records, failed = _act_on_each(ids, client.retry, lenient=all_jobs)
    summary = "retried {count} job(s)" if all_jobs else ""
    _report(records, failed, as_json, len(job_ids) == 1, summary)


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
