"""`queuectl schedule add|list|remove|pause|resume`: recurring jobs."""

from __future__ import annotations

import click

from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings, print_json
from queuectl_client.cli.format import local_time, table


def register(cli: click.Group) -> None:
    cli.add_command(schedule)


@click.group()
def schedule() -> None:
    """Recurring jobs on a cron schedule.

    Each firing enqueues one job with the id NAME@FIRE-TIME (UTC), so no firing is
    ever enqueued twice, across restarts included.
    """


@schedule.command("add", context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.argument("command", nargs=-1, required=True)
@click.option("--cron", required=True, help="5-field cron expression, or @hourly, @daily...")
@click.option("--tz", help="IANA time zone the expression is read in (default UTC).")
@click.option(
    "--catch-up",
    type=click.Choice(["none", "one", "all"]),
    help="Firings missed while the daemon was down: skip them, run one, or run each (default one).",
)
@click.option("--replace", is_flag=True, help="Replace a schedule of the same name.")
@click.option("--max-retries", type=click.IntRange(min=0), help="Retries after the first attempt.")
@click.option("--priority", type=int, help="Job priority (default 0).")
@click.option("--timeout", type=click.FloatRange(min=0), help="Kill a job after S seconds.")
@click.option("--queue", help="Queue of the jobs (default 'default').")
@click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE", help="Extra environment.")
@click.option(
    "--unique-key",
    help="Skip a firing while the job of an earlier one (same key) is still pending or running.",
)
@pass_settings
def schedule_add(
    settings: Settings,
    name: str,
    command: tuple[str, ...],
    cron: str,
    tz: str | None,
    catch_up: str | None,
    replace: bool,
    max_retries: int | None,
    priority: int | None,
    timeout: float | None,
    queue: str | None,
    env_pairs: tuple[str, ...],
    unique_key: str | None,
) -> None:
    """Add a schedule NAME that runs COMMAND (words after -- are joined with spaces).

    Jobs run in the current directory with the current environment, as for enqueue.

    \b
    Examples:
      queuectl schedule add report --cron '*/5 * * * *' -- ./make-report.sh
      queuectl schedule add backup --cron '0 3 * * *' --tz Europe/Berlin \\
          --catch-up none --timeout 3600 -- 'pg_dump app > /backups/app.sql'
    """
    job: dict = {"command": " ".join(command)}
    options = {
        "max_retries": max_retries,
        "priority": priority,
        "timeout": timeout,
        "queue": queue,
        "unique_key": unique_key,
    }
    job.update({k: v for k, v in options.items() if v is not None})
    if env_pairs:
        env = {}
        for pair in env_pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                fail(f"--env: expected KEY=VALUE, got {pair!r}", EXIT_USAGE)
            env[key] = value
        job["env"] = env
    result = settings.client().schedule_add(
        name, cron, job, tz=tz, catch_up=catch_up, replace=replace
    )
    click.echo(f"schedule {result['name']}: next at {local_time(result['next_fire'])}")


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of schedules.")
@pass_settings
def schedule_list(settings: Settings, as_json: bool) -> None:
    """Every schedule with its next firing and last job.

    \b
    Example:
      queuectl schedule list
    """
    schedules = settings.client().schedule_list()
    if as_json:
        print_json(schedules)
        return
    if not schedules:
        click.echo("no schedules")
        return
    rows = [
        (
            s["name"],
            s["cron"],
            s["tz"],
            s["catch_up"],
            "paused" if s["paused"] else local_time(s["next_fire"]),
            s["last_job"],
            s["job"]["command"],
        )
        for s in schedules
    ]
    click.echo(table(("NAME", "CRON", "TZ", "CATCH-UP", "NEXT", "LAST JOB", "COMMAND"), rows))


@schedule.command("remove")
@click.argument("name")
@pass_settings
def schedule_remove(settings: Settings, name: str) -> None:
    """Delete a schedule (jobs it already enqueued stay).

    \b
    Example:
      queuectl schedule remove report
    """
    settings.client().schedule_remove(name)
    click.echo(f"schedule {name} removed")


@schedule.command("pause")
@click.argument("name")
@pass_settings
def schedule_pause(settings: Settings, name: str) -> None:
    """Stop firing NAME until resumed.

    \b
    Example:
      queuectl schedule pause report
    """
    settings.client().schedule_pause(name)
    click.echo(f"schedule {name} paused")


@schedule.command("resume")
@click.argument("name")
@pass_settings
def schedule_resume(settings: Settings, name: str) -> None:
    """Fire NAME again from now on (firings that fell in the pause are not caught up).

    \b
    Example:
      queuectl schedule resume report
    """
    result = settings.client().schedule_resume(name)
    click.echo(f"schedule {name}: next at {local_time(result['next_fire'])}")


@schedule.command("run")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def schedule_run(settings: Settings, name: str, as_json: bool) -> None:
    """Enqueue one job of NAME now, paused or not; its timetable stays as it was.

    Prints the job's id (NAME@TIME-now). When a live job holds the template's
    unique key, nothing is added and that job's id is printed instead.

    \b
    Example:
      queuectl schedule run report && queuectl logs -f "$(queuectl schedule run report)"
    """
    result = settings.client().schedule_run(name)
    if as_json:
        print_json(result)
        return
    click.echo(result["id"])
    if result["existing"]:
        click.echo(
            f"queuectl: note: job {result['id']} holds the unique key; nothing added", err=True
        )
