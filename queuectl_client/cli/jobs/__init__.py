"""Commands on jobs (PROTOCOL.md 8.2): adding them, reading them, changing them."""

from __future__ import annotations

import click

from queuectl_client.cli.jobs import enqueue, steer, view


def register(cli: click.Group) -> None:
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
