"""Commands on jobs: enqueue, list, show, logs, wait, cancel."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator

import click

from protocol.messages import JOB_STATES, TERMINAL_STATES
from protocol.times import parse_iso, to_iso
from queuectl_client.cli.completion import complete_job_ids
from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings, print_json
from queuectl_client.cli.format import job_rows, local_time, table
from queuectl_client.cli.progress import Progress

FILE_BATCH = 10_000
# A file this large gets a progress bar (on a terminal), sent in smaller batches
# so that the bar moves; 1 MiB is roughly 10,000 jobs.
PROGRESS_MIN_BYTES = 1024 * 1024
PROGRESS_BATCH = 1000
# Waiting for this many jobs or more shows a progress bar (on a terminal).
PROGRESS_MIN_JOBS = 10
WAIT_STEP = 0.5


def register(cli: click.Group) -> None:
    for command in (enqueue, list_jobs, show, logs, wait, cancel):
        cli.add_command(command)


def _parse_json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", EXIT_USAGE
        )


def _read_jobs_file(handle, on_line: Callable[[int], None] | None = None) -> Iterator[dict]:
    for number, line in enumerate(handle, 1):
        if on_line is not None:
            on_line(len(line.encode()))
        if not line.strip():
            continue
        spec = _parse_json(line, f"line {number}")
        if not isinstance(spec, dict):
            fail(f"line {number}: a job must be a JSON object", EXIT_USAGE)
        yield spec


@click.command()
@click.argument("job_json", required=False)
@click.option("--command", "-c", help="The shell command to run (instead of JSON).")
@click.option("--id", "job_id", help="Job id (generated when absent).")
@click.option("--max-retries", type=click.IntRange(min=0), help="Retries after the first attempt.")
@click.option("--priority", type=int, help="Higher runs first (default 0).")
@click.option(
    "--delay", type=click.FloatRange(min=0), help="Start no sooner than S seconds from now."
)
@click.option(
    "--run-at", help="Start no sooner than this ISO 8601 time (local time without offset)."
)
@click.option(
    "--timeout", type=click.FloatRange(min=0), help="Kill the job after S seconds (0: none)."
)
@click.option("--queue", help="Queue name (default 'default').")
@click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE", help="Extra environment.")
@click.option(
    "--file", "jobs_file", type=click.File("r"), help="JSON lines file of jobs, or - for stdin."
)
@click.option(
    "--after", metavar="ID[,ID...]", help="Start only once all these jobs have completed."
)
@click.option(
    "--unique-key", help="At most one pending, retry-waiting or running job holds this key."
)
@click.option(
    "--on-duplicate",
    type=click.Choice(["ignore", "error"]),
    help="When a live job holds the unique key: print its id (ignore, default) or fail.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of the new ids.")
@pass_settings
def enqueue(
    settings: Settings,
    job_json: str | None,
    command: str | None,
    job_id: str | None,
    max_retries: int | None,
    priority: int | None,
    delay: float | None,
    run_at: str | None,
    timeout: float | None,
    queue: str | None,
    env_pairs: tuple[str, ...],
    jobs_file,
    after: str | None,
    unique_key: str | None,
    on_duplicate: str | None,
    as_json: bool,
) -> None:
    """Add a job (JSON, --command or --file); print its id.

    With a unique key held by a live job, the id printed is that job's.

    \b
    Examples:
      queuectl enqueue '{"id":"job1","command":"sleep 2"}'
      queuectl enqueue --command 'echo hi' --priority 5 --delay 30
      queuectl enqueue --command 'make deploy' --after build,test
      queuectl enqueue --command 'sync-mail' --unique-key sync --on-duplicate error
      queuectl enqueue --file jobs.jsonl
    """
    sources = [x is not None for x in (job_json, command, jobs_file)]
    if sum(sources) != 1:
        fail("give exactly one of JOB_JSON, --command or --file", EXIT_USAGE)
    if command is None and (after is not None or unique_key is not None):
        fail(
            "--after and --unique-key go with --command (in JSON use 'after', 'unique_key')",
            EXIT_USAGE,
        )
    client = settings.client()
    if jobs_file is not None:
        _enqueue_file(client, jobs_file, as_json, on_duplicate)
        return
    if job_json is not None:
        spec = _parse_json(job_json, "job")
        if not isinstance(spec, (dict, list)):
            fail("job: expected a JSON object (or an array of objects)", EXIT_USAGE)
        specs = spec if isinstance(spec, list) else [spec]
    else:
        spec = {"command": command}
        options = {
            "id": job_id,
            "max_retries": max_retries,
            "priority": priority,
            "delay": delay,
            "timeout": timeout,
            "queue": queue,
        }
        spec.update({k: v for k, v in options.items() if v is not None})
        if run_at is not None:
            try:
                spec["run_at"] = to_iso(parse_iso(run_at))
            except ValueError:
                fail(f"--run-at: {run_at!r} is not an ISO 8601 time", EXIT_USAGE)
        if env_pairs:
            spec["env"] = dict(_env_pair(p) for p in env_pairs)
        if after is not None:
            spec["after"] = [dep.strip() for dep in after.split(",")]
            if not all(spec["after"]):
                fail(f"--after: {after!r} holds an empty job id", EXIT_USAGE)
        if unique_key is not None:
            spec["unique_key"] = unique_key
        specs = [spec]
    result = client.submit(*specs, on_duplicate=on_duplicate)
    if as_json:
        print_json(result["ids"])
        return
    for job_id in result["ids"]:
        click.echo(job_id)
    for job_id in result["existing"]:
        click.echo(f"queuectl: job {job_id} holds that unique key; nothing new enqueued", err=True)


def _enqueue_file(client, jobs_file, as_json: bool, on_duplicate: str | None) -> None:
    size = _regular_file_size(jobs_file)
    progress = Progress(size, "enqueue", unit=" bytes")
    progress.enabled = progress.enabled and size is not None and size >= PROGRESS_MIN_BYTES
    read = 0

    def on_line(length: int) -> None:
        nonlocal read
        read += length
        progress.update(read)

    total = 0
    all_ids: list[str] = []
    batch = PROGRESS_BATCH if progress.enabled else FILE_BATCH
    try:
        with progress:
            batches = client.enqueue_many(
                _read_jobs_file(jobs_file, on_line), batch_size=batch, on_duplicate=on_duplicate
            )
            for ids in batches:
                total += len(ids)
                if as_json:
                    all_ids.extend(ids)
                else:
                    click.echo("\n".join(ids))
    except (Exception, SystemExit):
        if total:
            click.echo(f"queuectl: {total} job(s) were enqueued before the error", err=True)
        raise
    if as_json:
        print_json(all_ids)


def _regular_file_size(handle) -> int | None:
    try:
        info = os.fstat(handle.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    import stat

    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        fail(f"--env: expected KEY=VALUE, got {text!r}", EXIT_USAGE)
    return key, value


@click.command("list")
@click.option("--state", type=click.Choice(JOB_STATES), help="Only jobs in this state.")
@click.option("--queue", help="Only jobs of this queue.")
@click.option("--limit", type=click.IntRange(min=1), help="At most N jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of job records.")
@pass_settings
def list_jobs(
    settings: Settings, state: str | None, queue: str | None, limit: int | None, as_json: bool
) -> None:
    """List jobs in the order they were added.

    \b
    Example:
      queuectl list --state pending --limit 20
    """
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
    job = settings.client().get_job(job_id)
    if as_json:
        print_json(job)
        return
    fields = [
        ("id", job["id"]),
        ("state", job["state"]),
        ("command", job["command"]),
        ("queue", job["queue"]),
        ("priority", job["priority"]),
        ("after", ", ".join(job.get("after") or ()) or None),
        ("unique key", job.get("unique_key")),
        ("attempts", f"{job['attempts']} of {job['max_retries'] + 1}"),
        ("timeout", f"{job['timeout']:g} s" if job["timeout"] else "none"),
        ("created", local_time(job["created_at"])),
        ("run at", local_time(job["run_at"])),
        ("started", local_time(job["started_at"])),
        ("finished", local_time(job["finished_at"])),
        ("exit code", job["exit_code"]),
        ("last error", job["last_error"]),
    ]
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


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids())
@click.option("--run", type=click.IntRange(min=1), help="Which run (default: the latest).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing while the job runs.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object: the run and its output."
)
@pass_settings
def logs(settings: Settings, job_id: str, run: int | None, follow: bool, as_json: bool) -> None:
    """Print the captured output (stdout and stderr) of a job's run.

    \b
    Example:
      queuectl logs job1 -f
    """
    client = settings.client()
    if as_json:
        if follow:
            fail("--json prints the output so far; it cannot be combined with -f", EXIT_USAGE)
        _logs_json(client, job_id, run)
        return
    offset = 0
    out = sys.stdout.buffer
    while True:
        chunk = client.logs(job_id, run=run, offset=offset, wait=5.0 if follow else None)
        run = chunk["run"]
        data = chunk["data"]
        if data:
            out.write(data)
            out.flush()
            offset = chunk["offset"]
            continue
        if not follow or not chunk["running"]:
            return


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
@click.option("--json", "as_json", is_flag=True, help="Print the final states as JSON.")
@pass_settings
def wait(
    settings: Settings, job_ids: tuple[str, ...], timeout: float | None, as_json: bool
) -> None:
    """Wait until each job is completed, dead or canceled.

    Exits 0 only if every job completed.

    \b
    Example:
      queuectl wait job1 job2 --timeout 60
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
    if any(state != "completed" for state in states.values()):
        sys.exit(1)


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
