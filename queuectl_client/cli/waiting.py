"""Why a job does not run: what `enqueue`, `show` and `status` say when nothing can.

A fleet of 0, a paused queue or a drain hold jobs without any error, across
restarts too; these notes are how a person finds out. They are worked out here
from `status`, `queue_list` and the job record, and never enter --json output.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from protocol.errors import ProtocolError
from queuectl_client.cli.format import local_time

WAITING_STATES = ("pending", "failed")


NO_WORKERS = "there are no workers (start some with `queuectl worker start`)"
DRAINED = "the fleet is drained (`queuectl worker resume` ends it)"


def fleet_blockers(status: dict) -> list[str]:
    """What keeps every job from starting, whatever its queue."""
    workers = status["workers"]
    notes = []
    if workers["target"] == 0:
        notes.append(NO_WORKERS)
    if workers.get("draining"):
        notes.append(DRAINED)
    return notes


def enqueued_note(client, queues: Iterable[str]) -> str | None:
    """One line for jobs just enqueued into `queues` that nothing will start: a fleet
    of 0, a drain, a paused queue. A delay or a dependency the jobs asked for is no
    news to whoever enqueued them, so it is not mentioned."""
    try:
        notes = fleet_blockers(client.status())
        notes.extend(queue_blocker(name) for name in paused_queues(client.queue_list(), queues))
    except ProtocolError:
        # The jobs are enqueued; a note that cannot be worked out must not make
        # the command look as if it had failed.
        return None
    return f"note: no job starts yet: {'; '.join(notes)}" if notes else None


def paused_queues(queues: list[dict], names: Iterable[str] | None = None) -> list[str]:
    """The paused queues among `names` (all queues when None)."""
    wanted = None if names is None else set(names)
    return [q["name"] for q in queues if q["paused"] and (wanted is None or q["name"] in wanted)]


def queue_blocker(name: str) -> str:
    return f"queue {name} is paused (`queuectl queue resume {name}` resumes it)"


def job_blockers(job: dict, status: dict, queues: list[dict]) -> list[str]:
    """Why a waiting job has not started, most specific first; empty when it is not
    waiting or nothing holds it but a free worker."""
    if job["state"] not in WAITING_STATES:
        return []
    from protocol.times import parse_iso  # with datetime: only `show` needs it

    notes = []
    if job["state"] == "failed":
        notes.append(f"a retry is scheduled for {local_time(job['run_at'])}")
    elif parse_iso(job["run_at"]) > time.time():
        notes.append(f"it is scheduled for {local_time(job['run_at'])}")
    left = job.get("dependencies_left") or 0
    if left:
        notes.append(f"it waits for {left} of its dependencies ({', '.join(job['after'])})")
    notes.extend(queue_blocker(name) for name in paused_queues(queues, [job["queue"]]))
    for queue in queues:
        if queue["name"] == job["queue"] and 0 < queue["concurrency"] <= queue["running"]:
            notes.append(
                f"queue {queue['name']} is at its limit ({queue['running']}/"
                f"{queue['concurrency']} running)"
            )
    notes.extend(fleet_blockers(status))
    if not notes and status["workers"]["idle"] == 0:
        notes.append("every worker is busy")
    return notes
