"""Sending jobs and saying what became of them: the ids, unique keys already held,
and a note when nothing will start them.

Without click, so that `enqueue --command` can run without it (cli/quick.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from queuectl_client.cli.context import print_json
from queuectl_client.cli.terminal import echo
from queuectl_client.cli.waiting import enqueued_note


def submit(client, specs: list, on_duplicate: str | None, as_json: bool) -> None:
    result = client.submit(*specs, on_duplicate=on_duplicate)
    if as_json:
        print_json(result["ids"])
    else:
        for job_id in result["ids"]:
            echo(job_id)
    for job_id in result["existing"]:
        echo(f"queuectl: job {job_id} holds that unique key; nothing new enqueued", err=True)
    note_if_nothing_runs(client, _queues_of(specs))


def _queues_of(specs: Iterable) -> set[str]:
    return {
        (spec.get("queue") or "default") if isinstance(spec, dict) else "default" for spec in specs
    }


def note_if_nothing_runs(client, queues: set[str]) -> None:
    note = enqueued_note(client, queues)
    if note is not None:
        echo(f"queuectl: {note}", err=True)
