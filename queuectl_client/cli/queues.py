"""`queuectl queue set|list|pause|resume`: named queues."""

from __future__ import annotations

import click

from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings, print_json
from queuectl_client.cli.format import duration, table


def register(cli: click.Group) -> None:
    cli.add_command(queue)


@click.group()
def queue() -> None:
    """Named queues: concurrency limits, priority between queues, pause and resume.

    Between queues the order is strict: jobs of a queue with a higher priority always
    start before those of a lower one; within that, higher job priority, then the
    earliest due. A concurrency limit caps how many jobs of a queue run at once.
    """


@queue.command("set")
@click.argument("name")
@click.option(
    "--concurrency",
    type=click.IntRange(min=0),
    help="Most jobs of this queue running at once (0: no limit but the fleet).",
)
@click.option("--priority", type=int, help="Queue priority: higher queues are served first.")
@click.option(
    "--on-finish",
    metavar="COMMAND",
    help="Shell command run after each job of this queue ends ('' removes it).",
)
@pass_settings
def queue_set(
    settings: Settings,
    name: str,
    concurrency: int | None,
    priority: int | None,
    on_finish: str | None,
) -> None:
    """Change a queue's settings (they persist).

    \b
    Examples:
      queuectl queue set emails --concurrency 2
      queuectl queue set urgent --priority 10
      queuectl queue set reports --on-finish 'test $QUEUECTL_QUEUE_ACTIVE = 0 && notify-send done'
    """
    if concurrency is None and priority is None and on_finish is None:
        fail("give at least one of --concurrency, --priority, --on-finish", EXIT_USAGE)
    result = settings.client().queue_set(name, concurrency, priority, on_finish)
    click.echo(_describe(result))


@queue.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of queues.")
@pass_settings
def queue_list(settings: Settings, as_json: bool) -> None:
    """Every queue: jobs by state, running against its limit, paused, oldest due job.

    \b
    Example:
      queuectl queue list
    """
    queues = settings.client().queue_list()
    if as_json:
        print_json(queues)
        return
    if not queues:
        click.echo("no queues")
        return
    rows = [
        (
            q["name"],
            q["jobs"]["pending"],
            q["jobs"]["failed"],
            f"{q['running']}/{q['concurrency'] or '-'}",
            q["jobs"]["completed"],
            q["jobs"]["dead"],
            q["jobs"]["canceled"],
            q["priority"],
            "yes" if q["paused"] else "no",
            duration(q["oldest_due_age"]) if q["oldest_due_age"] is not None else "-",
        )
        for q in queues
    ]
    headers = (
        "QUEUE",
        "PENDING",
        "RETRYING",
        "RUNNING/LIMIT",
        "COMPLETED",
        "DEAD",
        "CANCELED",
        "PRI",
        "PAUSED",
        "OLDEST DUE",
    )
    click.echo(table(headers, rows, stretch=0))


@queue.command("pause")
@click.argument("name")
@pass_settings
def queue_pause(settings: Settings, name: str) -> None:
    """Start no new job from NAME; its running jobs finish. Enqueues are accepted.

    \b
    Example:
      queuectl queue pause emails
    """
    click.echo(_describe(settings.client().queue_pause(name)))


@queue.command("resume")
@click.argument("name")
@pass_settings
def queue_resume(settings: Settings, name: str) -> None:
    """Let jobs of NAME start again.

    \b
    Example:
      queuectl queue resume emails
    """
    click.echo(_describe(settings.client().queue_resume(name)))


def _describe(q: dict) -> str:
    limit = q["concurrency"] or "none"
    hook = f", on_finish {q['on_finish']!r}" if q.get("on_finish") else ""
    state = "paused" if q["paused"] else "active"
    return f"queue {q['name']}: {state}, concurrency {limit}, priority {q['priority']}{hook}"
