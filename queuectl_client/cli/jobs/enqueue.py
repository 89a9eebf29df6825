"""`queuectl enqueue`: one job from -c or JSON, or many from a file of JSON lines."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

import click

from protocol.schema import OUT_OF_RANGE, find_value, out_of_range
from protocol.times import parse_iso, to_iso
from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings, print_json
from queuectl_client.cli.progress import Progress

FILE_BATCH = 10_000
# A file this large gets a progress bar (on a terminal), sent in smaller batches
# so that the bar moves; 1 MiB is roughly 10,000 jobs.
PROGRESS_MIN_BYTES = 1024 * 1024
PROGRESS_BATCH = 1000


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
        # Said here, the line is known; the client would name a place in a batch.
        field = find_value(spec, out_of_range)
        if field is not None:
            fail(f"line {number}: field {field!r} {OUT_OF_RANGE}", EXIT_USAGE)
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
