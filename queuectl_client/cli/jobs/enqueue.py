"""`queuectl enqueue`: one job from -c, the words after -- or JSON, or many from a file of
JSON lines; and `queuectl add -- CMD ARGS...`, the short form for a command."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Iterator
from typing import BinaryIO

import click

from protocol.schema import OUT_OF_RANGE, find_value, out_of_range
from protocol.times import parse_iso, to_iso
from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings, print_json
from queuectl_client.cli.jobs.submit import note_if_nothing_runs, submit
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
            f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            + _command_hint(text),
            EXIT_USAGE,
        )


def _command_hint(text: str) -> str:
    """What to type instead, when the argument reads like a shell command, not JSON."""
    if text.lstrip()[:1] in ("{", "[", '"'):
        return ""
    if "\n" in text or not text.strip():
        return "; to run a shell command use: queuectl add -- echo hi"
    return f"; to run a shell command use: queuectl add -- {shlex.quote(text)}"


# The C scanner that json.loads calls, without the checks around it: a line it reads
# to its end (but for JSON whitespace) is exactly what json.loads makes of it, and
# any other line is handed to json.loads, which says what is wrong with it.
_scan_json = json.JSONDecoder().scan_once
_JSON_SPACE = " \t\n\r"
# An integer beyond 64 bits has at least 19 digits in a row: a line without such a
# run needs no search for one.
_LONG_DIGITS = re.compile(r"\d{19}")


def _read_jobs_file(
    handle: BinaryIO,
    defaults: JobDefaults,
    queues: set[str],
    on_line: Callable[[int], None] | None = None,
) -> Iterator[dict]:
    """The jobs of a JSON lines file, with the command line's defaults."""
    count = 0
    for number, raw in enumerate(handle, 1):
        if on_line is not None:
            on_line(len(raw))
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            fail(
                f"line {number}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1})",
                EXIT_USAGE,
            )
        try:
            spec, end = _scan_json(line, 0)
        except (StopIteration, ValueError):
            end = -1
        if end < 0 or line[end:].strip(_JSON_SPACE):
            if not line.strip():
                continue
            spec = _parse_json(line, f"line {number}")
        if not isinstance(spec, dict):
            fail(f"line {number}: a job must be a JSON object", EXIT_USAGE)
        # Said here, the line is known; the client would name a place in a batch.
        if _LONG_DIGITS.search(line) is not None:
            field = find_value(spec, out_of_range)
            if field is not None:
                fail(f"line {number}: field {field!r} {OUT_OF_RANGE}", EXIT_USAGE)
        count += 1
        if count == 2:
            defaults.refuse_for_many(f"line {number}: the file holds more than one job")
        spec = defaults.apply(spec)
        queues.add(spec.get("queue") or "default")
        yield spec


class JobDefaults:
    """The job options of the command line, as the fields of a spec that leaves them out.

    With --command they make the job; with JSON or --file they fill in what each job
    does not say, so an option is never silently dropped. `--id` and `--unique-key`
    name one job, so they are refused for more than one.
    """

    ONE_JOB_ONLY = (("id", "--id"), ("unique_key", "--unique-key"))

    def __init__(self, fields: dict) -> None:
        self.fields = fields

    def refuse_for_many(self, why: str) -> None:
        given = [option for key, option in self.ONE_JOB_ONLY if key in self.fields]
        if given:
            fail(f"{why}; {' and '.join(given)} name a single job", EXIT_USAGE)

    def apply(self, spec: dict) -> dict:
        if not self.fields:
            return spec
        out = dict(spec)
        for key, value in self.fields.items():
            if key == "env":
                # The job's own variables win; the command line adds the others.
                own = spec.get("env")
                out["env"] = {**value, **own} if isinstance(own, dict) else own or value
            elif key in ("run_at", "delay"):
                # A job that gives either time keeps it: the two exclude each other.
                if spec.get("run_at") is None and spec.get("delay") is None:
                    out[key] = value
            elif spec.get(key) is None:
                out[key] = value
        return out


def job_options(function: Callable) -> Callable:
    """The options that describe a job, shared by `enqueue` and `add`."""
    options = [
        click.option("--id", "job_id", help="Job id (generated when absent)."),
        click.option(
            "--max-retries", type=click.IntRange(min=0), help="Retries after the first attempt."
        ),
        click.option("--priority", type=int, help="Higher runs first (default 0)."),
        click.option(
            "--delay", type=click.FloatRange(min=0), help="Start no sooner than S seconds from now."
        ),
        click.option(
            "--run-at", help="Start no sooner than this ISO 8601 time (local time without offset)."
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0),
            help="Kill the job after S seconds (0: none).",
        ),
        click.option("--queue", help="Queue name (default 'default')."),
        click.option(
            "--env", "env_pairs", multiple=True, metavar="KEY=VALUE", help="Extra environment."
        ),
        click.option(
            "--after", metavar="ID[,ID...]", help="Start only once all these jobs have completed."
        ),
        click.option(
            "--unique-key", help="At most one pending, retry-waiting or running job holds this key."
        ),
        click.option(
            "--on-duplicate",
            type=click.Choice(["ignore", "error"]),
            help="When a live job holds the unique key: print its id (ignore, default) or fail.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON array of the new ids."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _job_defaults(
    job_id: str | None,
    max_retries: int | None,
    priority: int | None,
    delay: float | None,
    run_at: str | None,
    timeout: float | None,
    queue: str | None,
    env_pairs: tuple[str, ...],
    after: str | None,
    unique_key: str | None,
) -> JobDefaults:
    fields = {
        "id": job_id,
        "max_retries": max_retries,
        "priority": priority,
        "delay": delay,
        "timeout": timeout,
        "queue": queue,
        "unique_key": unique_key,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if run_at is not None:
        if delay is not None:
            fail("give --run-at or --delay, not both", EXIT_USAGE)
        try:
            fields["run_at"] = to_iso(parse_iso(run_at))
        except ValueError:
            fail(f"--run-at: {run_at!r} is not an ISO 8601 time", EXIT_USAGE)
    if env_pairs:
        fields["env"] = dict(_env_pair(p) for p in env_pairs)
    if after is not None:
        fields["after"] = [dep.strip() for dep in after.split(",")]
        if not all(fields["after"]):
            fail(f"--after: {after!r} holds an empty job id", EXIT_USAGE)
    return JobDefaults(fields)


class _WordsAfterDashes(click.Command):
    """Keeps the words after `--` apart from JOB_JSON: `enqueue -- echo hi` runs a command,
    `enqueue '{...}'` reads JSON, and neither can be taken for the other."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            name
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag
            for name in param.opts
        }
        index, words = 0, None
        while index < len(args):
            if args[index] == "--":
                words = args[index + 1 :]
                args = args[:index]
                break
            index += 2 if args[index] in takes_value else 1
        ctx.meta["queuectl.words"] = words
        return super().parse_args(ctx, args)


def command_from_words(words: tuple[str, ...] | list[str]) -> str:
    """One word is a shell command line as typed; several are quoted and joined, so
    each reaches the program as one argument (`add -- echo 'a b'` runs `echo 'a b'`)."""
    return words[0] if len(words) == 1 else shlex.join(words)


@click.command(cls=_WordsAfterDashes)
@click.argument("job_json", required=False)
@click.option("--command", "-c", help="The shell command to run (instead of JSON).")
@click.option(
    "--file",
    "jobs_file",
    type=click.File("rb"),
    help="JSON lines file of jobs, or - for stdin.",
)
@job_options
@pass_settings
@click.pass_context
def enqueue(
    ctx: click.Context,
    settings: Settings,
    job_json: str | None,
    command: str | None,
    jobs_file: BinaryIO | None,
    on_duplicate: str | None,
    as_json: bool,
    **options: object,
) -> None:
    """Add a job (JSON, --command, -- CMD ARGS... or --file); print its id.

    The job options (--id, --max-retries, --priority, --delay, --run-at,
    --timeout, --queue, --env, --after, --unique-key) make the job with
    --command or after --; with JSON or --file they are defaults for the
    fields each job leaves out (--env adds the variables its env does not
    set). --id and --unique-key name one job: they are refused for several.

    With a unique key held by a live job, the id printed is that job's.

    \b
    Examples:
      queuectl enqueue -- make test
      queuectl enqueue '{"id":"job1","command":"sleep 2"}'
      queuectl enqueue --command 'echo hi' --priority 5 --delay 30
      queuectl enqueue --command 'make deploy' --after build,test
      queuectl enqueue --command 'sync-mail' --unique-key sync --on-duplicate error
      queuectl enqueue --file jobs.jsonl --queue batch --max-retries 0
    """
    words = ctx.meta.get("queuectl.words")
    if words is not None:
        if not words:
            fail("give the command to run after --", EXIT_USAGE)
        if command is not None:
            fail("give --command or the words after --, not both", EXIT_USAGE)
        command = command_from_words(words)
    sources = [x is not None for x in (job_json, command, jobs_file)]
    if sum(sources) != 1:
        fail("give exactly one of JOB_JSON, --command, -- CMD ARGS... or --file", EXIT_USAGE)
    defaults = _job_defaults(**options)
    client = settings.client()
    if jobs_file is not None:
        _enqueue_file(client, jobs_file, defaults, as_json, on_duplicate)
        return
    if job_json is not None:
        spec = _parse_json(job_json, "job")
        if not isinstance(spec, (dict, list)):
            fail("job: expected a JSON object (or an array of objects)", EXIT_USAGE)
        specs = spec if isinstance(spec, list) else [spec]
        if len(specs) > 1:
            defaults.refuse_for_many(f"job: the array holds {len(specs)} jobs")
        specs = [defaults.apply(s) if isinstance(s, dict) else s for s in specs]
    else:
        specs = [defaults.apply({"command": command})]
    submit(client, specs, on_duplicate, as_json)


@click.command(context_settings={"allow_interspersed_args": False})
@click.argument("words", nargs=-1, required=True, metavar="[--] CMD [ARGS]...")
@job_options
@pass_settings
def add(
    settings: Settings,
    words: tuple[str, ...],
    on_duplicate: str | None,
    as_json: bool,
    **options: object,
) -> None:
    """Add a job that runs CMD ARGS...; print its id.

    One word is run as a shell command line, as typed (`add -- 'make && make
    test'`); several are quoted and joined, so that each reaches the program as
    one argument (`add -- echo 'a b'` runs `echo 'a b'`). Options go before the
    command; the job runs in this directory and environment, as with enqueue.

    \b
    Examples:
      queuectl add -- echo hi
      queuectl add --id build --timeout 600 -- make -j4
      queuectl add --after build -- make test
    """
    specs = [_job_defaults(**options).apply({"command": command_from_words(words)})]
    submit(settings.client(), specs, on_duplicate, as_json)


def _enqueue_file(
    client, jobs_file: BinaryIO, defaults: JobDefaults, as_json: bool, on_duplicate: str | None
) -> None:
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
    queues: set[str] = set()
    batch = PROGRESS_BATCH if progress.enabled else FILE_BATCH
    jobs = _read_jobs_file(jobs_file, defaults, queues, on_line if progress.enabled else None)
    try:
        with progress:
            batches = client.enqueue_many(
                jobs,
                batch_size=batch,
                on_duplicate=on_duplicate,
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
    if total:
        note_if_nothing_runs(client, queues)


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
