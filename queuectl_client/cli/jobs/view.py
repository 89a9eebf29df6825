"""Reading jobs: `queuectl list`, `show`, `logs` and `wait`."""

from __future__ import annotations

import signal
import sys
import time

import click

from protocol.messages import JOB_STATES, TERMINAL_STATES
from queuectl_client.cli.completion import complete_job_ids
from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings, print_json
from queuectl_client.cli.format import job_rows, local_time, table, tries
from queuectl_client.cli.progress import Progress
from queuectl_client.cli.waiting import WAITING_STATES, job_blockers

# Waiting for this many jobs or more shows a progress bar (on a terminal).
PROGRESS_MIN_JOBS = 10
WAIT_STEP = 0.5
# How long one `logs` request of a follower may be held while a run is quiet.
FOLLOW_WAIT = 5.0
# How often a follower looks whether a waiting job has started its next run.
START_POLL = 0.5


@click.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(JOB_STATES),
    help="Only jobs in this state (repeatable: in any of them).",
)
@click.option("--queue", help="Only jobs of this queue.")
@click.option("--limit", type=click.IntRange(min=1), help="At most N jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of job records.")
@pass_settings
def list_jobs(
    settings: Settings,
    states: tuple[str, ...],
    queue: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List jobs in the order they were added.

    \b
    Examples:
      queuectl list --state pending --limit 20
      queuectl list --state dead --state canceled --queue ci
    """
    # One state goes as a string, which every daemon of protocol 1 understands.
    state = list(dict.fromkeys(states)) if len(states) > 1 else (states[0] if states else None)
    jobs = settings.client().list_jobs(state=state, queue=queue, limit=limit)
    if as_json:
        print_json(jobs)
    elif jobs:
        click.echo(job_rows(jobs))
    else:
        click.echo("no jobs")


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids())
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
@pass_settings
def show(settings: Settings, job_id: str, as_json: bool) -> None:
    """Show one job and the history of its runs.

    \b
    Example:
      queuectl show job1
    """
    client = settings.client()
    job = client.get_job(job_id)
    if as_json:
        print_json(job)
        return
    waiting = None
    if job["state"] in WAITING_STATES:
        waiting = "; ".join(job_blockers(job, client.status(), client.queue_list())) or None
    fields = [
        ("id", job["id"]),
        ("state", _state_line(job)),
        ("command", job["command"]),
        ("queue", job["queue"]),
        ("priority", job["priority"]),
        ("after", ", ".join(job.get("after") or ()) or None),
        ("unique key", job.get("unique_key")),
        ("tries", tries(job["attempts"], job["max_retries"], job["state"], " of ")),
        ("timeout", f"{job['timeout']:g} s" if job["timeout"] else "none"),
        ("created", local_time(job["created_at"])),
        ("run at", local_time(job["run_at"])),
        ("started", local_time(job["started_at"])),
        ("finished", local_time(job["finished_at"])),
        ("exit code", job["exit_code"]),
        ("last error", job["last_error"]),
    ]
    if waiting:
        fields.append(("waiting", waiting))
    for name, value in fields:
        click.echo(f"{name + ':':<11} {value if value is not None else '-'}")
    history = job.get("history") or []
    if history:
        click.echo("")
        rows = [
            (
                h["run"],
                h["outcome"],
                h["worker"],
                h["pid"],
                local_time(h["started_at"]),
                local_time(h["finished_at"]),
                h["exit_code"] if h["exit_code"] is not None else h["signal"],
                h["error"],
            )
            for h in history
        ]
        click.echo(
            table(("RUN", "OUTCOME", "WORKER", "PID", "STARTED", "FINISHED", "EXIT", "ERROR"), rows)
        )


def _state_line(job: dict) -> str:
    if job["state"] == "failed":
        # The protocol's name, for `list --state`, with what it means.
        return f"failed (retrying at {local_time(job['run_at'])})"
    return job["state"]


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids())
@click.option("--run", type=click.IntRange(min=1), help="Which run (default: the latest).")
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Wait for the job to start, follow it across retries until it ends, "
    "and exit 0 only if it completed.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object: the run and its output."
)
@pass_settings
def logs(settings: Settings, job_id: str, run: int | None, follow: bool, as_json: bool) -> None:
    """Print the captured output (stdout and stderr) of a job's run.

    With -f, a job that has not started yet is waited for; each run is printed
    as it comes, with a line `--- run N ---` on stderr between runs, until the
    job is completed, dead or canceled. The exit code is then 0 if it completed
    and 1 if it ended dead or canceled. With --run, -f follows that run only,
    until it ends.

    \b
    Examples:
      queuectl logs job1 -f
      queuectl logs -f "$(queuectl add -- make test)"
    """
    client = settings.client()
    if as_json:
        if follow:
            fail("--json prints the output so far; it cannot be combined with -f", EXIT_USAGE)
        _logs_json(client, job_id, run)
        return
    if not follow or run is not None:
        _print_run(client, job_id, run, follow)
        return
    state = _follow_job(client, job_id)
    if state != "completed":
        fail(f"job {job_id} ended {state}")


def _print_run(client, job_id: str, run: int | None, follow: bool) -> None:
    offset = 0
    out = sys.stdout.buffer
    while True:
        chunk = client.logs(job_id, run=run, offset=offset, wait=FOLLOW_WAIT if follow else None)
        run = chunk["run"]
        data = chunk["data"]
        if data:
            out.write(data)
            out.flush()
            offset = chunk["offset"]
            continue
        if not follow or not chunk["running"]:
            return


def _follow_job(client, job_id: str) -> str:
    """Print the latest run and every run after it until the job ends; its final state."""
    run = None
    while True:
        ended = _wait_for_run(client, job_id, run or 1)
        if ended is not None:
            return ended
        if run is not None:
            click.echo(f"--- run {run} ---", err=True)
        run = client.logs(job_id, run=run, limit=1)["run"]
        _print_run(client, job_id, run, follow=True)
        run += 1


def _wait_for_run(client, job_id: str, run: int) -> str | None:
    """Until the job has started its run number `run`: None, or the job's final state
    if it ended without it.

    The daemon signals a job's end but not its start, so the start is looked for
    every START_POLL seconds, with `wait` as the pause: it answers at once when
    the job ends meanwhile (a pending job canceled, a retry that will not come).
    """
    while True:
        job = client.get_job(job_id)
        if job["runs"] >= run:
            return None
        if job["state"] in TERMINAL_STATES:
            return job["state"]
        client.wait([job_id], timeout=START_POLL)


def _logs_json(client, job_id: str, run: int | None) -> None:
    offset, data, chunk = 0, b"", None
    while True:
        chunk = client.logs(job_id, run=run, offset=offset)
        run = chunk["run"]
        if not chunk["data"]:
            break
        data += chunk["data"]
        offset = chunk["offset"]
    print_json(
        {
            "id": job_id,
            "run": chunk["run"],
            "state": chunk["state"],
            "running": chunk["running"],
            "bytes": len(data),
            "output": data.decode("utf-8", errors="replace"),
        }
    )


@click.command()
@click.argument("job_ids", nargs=-1, required=True, shell_complete=complete_job_ids())
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up after S seconds.")
@click.option(
    "--exit-code",
    "pass_exit_code",
    is_flag=True,
    help="Exit with the job's own exit code (several jobs: the first non-zero, in order).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the final states as JSON.")
@pass_settings
def wait(
    settings: Settings,
    job_ids: tuple[str, ...],
    timeout: float | None,
    pass_exit_code: bool,
    as_json: bool,
) -> None:
    """Wait until each job is completed, dead or canceled.

    Exits 0 only if every job completed, else 1. With --exit-code it exits with
    the job's own exit code instead, as `tsp -w` does: 0 for a completed job;
    for another, the exit code of its last run, 128+N if signal N ended that
    run, or 1 when there is neither (canceled before it ran, timed out, could
    not start). With several jobs, the first of them in the order given whose
    code is not 0 decides. A timeout exits 1 either way.

    \b
    Examples:
      queuectl wait job1 job2 --timeout 60
      queuectl wait --exit-code build
    """
    started = time.monotonic()
    client = settings.client()
    ids = list(dict.fromkeys(job_ids))
    progress = Progress(len(ids), "waiting", unit=" jobs")
    if progress.enabled and len(ids) >= PROGRESS_MIN_JOBS:
        result = _wait_with_progress(client, ids, timeout, progress)
    else:
        result = client.wait(ids, timeout=timeout)
    states = result["states"]
    if as_json:
        print_json(states)
    else:
        for job_id, state in states.items():
            click.echo(f"{job_id}: {state}")
    if not result["done"]:
        fail(f"timed out after {time.monotonic() - started:.1f} s with jobs still unfinished")
    if pass_exit_code:
        codes = (
            job_exit_code(client.get_job(job_id)) for job_id in ids if states[job_id] != "completed"
        )
        sys.exit(next((code for code in codes if code), 0))
    if any(state != "completed" for state in states.values()):
        sys.exit(1)


def job_exit_code(job: dict) -> int:
    """A finished job as one exit status, the way a shell reports its last command."""
    if job["state"] == "completed":
        return 0
    if job["exit_code"]:
        return job["exit_code"]
    history = job.get("history") or []
    name = history[-1]["signal"] if history else None
    if name in signal.Signals.__members__:
        return 128 + signal.Signals[name].value
    return 1


def _wait_with_progress(client, ids: list[str], timeout: float | None, progress: Progress) -> dict:
    """Wait in short steps so the bar can move; same result as one long wait."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with progress:
        while True:
            step = (
                WAIT_STEP
                if deadline is None
                else max(0.0, min(WAIT_STEP, deadline - time.monotonic()))
            )
            result = client.wait(ids, timeout=step)
            progress.update(sum(state in TERMINAL_STATES for state in result["states"].values()))
            if result["done"] or (deadline is not None and time.monotonic() >= deadline):
                return result
