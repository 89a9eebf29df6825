"""Commands on jobs (PROTOCOL.md 8.2): adding them, reading them, changing them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click


def register(cli: click.Group) -> None:
    # Imported here: jobs/submit.py runs `enqueue --command` without click, and
    # importing it must not load the commands below.
    from queuectl_client.cli.jobs import enqueue, steer, view

    for command in (
        enqueue.enqueue,
        enqueue.add,
        view.list_jobs,
        view.show,
        view.logs,
        view.wait,
        steer.cancel,
        steer.retry,
        steer.edit,
        steer.purge,
    ):
        cli.add_command(command)
