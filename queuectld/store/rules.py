"""The rules every store backend applies, written once.

A backend writes SQL; what a job may become, in which order a batch's jobs are
inserted, and the words a user reads when the store refuses are decided here,
so a second backend cannot drift from the first. Each check takes what the
backend read in its transaction and either returns what to write or raises
StoreError with a protocol error code.
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Iterable, Sequence

from protocol.messages import TERMINAL_STATES
from protocol.ops import ON_DUPLICATE
from queuectld.store.base import NewJob, StoreError, Transition

# The job fields `edit` may change (the backend's column names are the same).
EDITABLE = ("command", "priority", "run_at", "queue")
# A dependency that ends in one of these can never complete: its dependents are
# canceled with it.
ENDS_DEPENDENTS = ("dead", "canceled")
# Draws of generated ids for a batch whose ids turn out taken (each is a rare event).
ID_ATTEMPTS = 5


# -- refusals that any op may meet ------------------------------------------------


def no_job(job_id: str) -> StoreError:
    return StoreError("not_found", f"no job {job_id!r}")


def wrong_state(job_id: str, action: str, state: str) -> StoreError:
    return StoreError("conflict", f"cannot {action} job {job_id!r}: it is {state}")


def no_schedule(name: str) -> StoreError:
    return StoreError("not_found", f"no schedule {name!r}")


def schedule_exists(name: str) -> StoreError:
    return StoreError("conflict", f"schedule {name!r} already exists (replace it to change it)")


def check_fields(changes: dict, allowed: Iterable[str], what: str) -> None:
    """Refuse a change to a field the caller may not set (column names come from
    `allowed`, never from the caller)."""
    unknown = set(changes) - set(allowed)
    if unknown:
        raise StoreError("bad_request", f"{what} {sorted(unknown)[0]!r}")


# -- enqueue: ids, dependencies, unique keys -----------------------------------------


def check_on_duplicate(on_duplicate: str) -> None:
    if on_duplicate not in ON_DUPLICATE:
        raise StoreError(
            "bad_request", f"on_duplicate must be ignore or error, not {on_duplicate!r}"
        )


def random_ids(count: int) -> list[str]:
    """`count` random 12-hex-digit job ids from one call to the system's random source."""
    digits = secrets.token_bytes(6 * count).hex()
    return [digits[i : i + 12] for i in range(0, 12 * count, 12)]


def fresh_id(avoid: set[str]) -> str:
    """A random job id not in `avoid`."""
    while True:
        [job_id] = random_ids(1)
        if job_id not in avoid:
            return job_id


def batch_ids(jobs: list[NewJob]) -> list[str]:
    """Each job's id: its own, or a new random one unique in the batch.

    A generated id may still be taken by a stored job (48 random bits: filling
    a store with a million jobs meets that about once in 560 fills, with ten
    million about once in six); the backend's insert finds that out and draws
    again with `fresh_id`.
    """
    chosen: set[str] = set()
    for job in jobs:
        if job.id in chosen:
            raise StoreError("conflict", f"job id {job.id!r} appears twice in the batch")
        if job.id:
            chosen.add(job.id)
    generated = iter(random_ids(len(jobs) - len(chosen)))
    ids = []
    for job in jobs:
        job_id = job.id
        if not job_id:
            job_id = next(generated)
            if job_id in chosen:
                job_id = fresh_id(chosen)
            chosen.add(job_id)
        ids.append(job_id)
    return ids


def redraw_taken(jobs: list[NewJob], ids: list[str], taken: set[str]) -> list[str]:
    """A batch's ids with the generated ones that a stored job has drawn again; a
    conflict when an id the client chose is taken."""
    for job in jobs:
        if job.id and job.id in taken:
            raise id_taken(job.id)
    if not taken:
        raise StoreError("conflict", "the batch conflicts with a stored job")
    avoid = taken | set(ids)
    replaced = []
    for job_id in ids:
        if job_id in taken:
            job_id = fresh_id(avoid)
            avoid.add(job_id)
        replaced.append(job_id)
    return replaced


def no_free_ids() -> StoreError:
    return StoreError("conflict", "could not find free job ids for the batch")


def id_taken(job_id: str) -> StoreError:
    return StoreError("conflict", f"job id {job_id!r} already exists")


def unique_key_taken(unique_key: str, holder_id: str, holder_state: str) -> StoreError:
    return StoreError(
        "conflict", f"unique key {unique_key!r} is held by job {holder_id!r} ({holder_state})"
    )


def missing_dependency(job_id: str, dep_id: str) -> StoreError:
    return StoreError("invalid_job", f"job {job_id!r}: dependency {dep_id!r} does not exist")


def dependencies(job: NewJob, position: dict[str, int]) -> list[int | str]:
    """The job's dependencies, each once: batch indexes for the batch's own jobs,
    else ids of stored jobs."""
    return [position.get(dep, dep) for dep in dict.fromkeys(job.after)]


def batch_edges(jobs: list[NewJob], ids: list[str], position: dict[str, int]) -> list[list[int]]:
    """For each job of the batch, the indexes of the batch's own jobs it waits for."""
    edges = []
    for index, job in enumerate(jobs):
        deps = []
        for dep in job.after:
            if dep == ids[index]:
                raise StoreError("invalid_job", f"job {dep!r} cannot run after itself")
            if dep in position:
                deps.append(position[dep])
        edges.append(deps)
    return edges


def insert_order(ids: list[str], edges: list[list[int]]) -> list[int]:
    """Batch indexes with every dependency before its dependents, otherwise in batch
    order; a cycle is an error naming its jobs."""
    waiting_on = [len(set(deps)) for deps in edges]
    dependents: list[list[int]] = [[] for _ in ids]
    for index, deps in enumerate(edges):
        for dep in set(deps):
            dependents[dep].append(index)
    ready = [index for index, n in enumerate(waiting_on) if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for dependent in dependents[index]:
            waiting_on[dependent] -= 1
            if waiting_on[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) < len(ids):
        raise StoreError("invalid_job", f"dependency cycle: {_describe_cycle(ids, edges, order)}")
    return order


def _describe_cycle(ids: list[str], edges: list[list[int]], done: list[int]) -> str:
    left = set(range(len(ids))) - set(done)
    start = min(left)
    path, seen = [start], {start}
    while True:
        nxt = next(dep for dep in edges[path[-1]] if dep in left)
        if nxt in seen:
            cycle = path[path.index(nxt) :] + [nxt]
            return " -> ".join(ids[i] for i in cycle) + " (each waits for the next)"
        path.append(nxt)
        seen.add(nxt)


def dependency_ended(dep_id: str, dep_state: str) -> str:
    """The error of a job canceled because a dependency can no longer complete."""
    return f"dependency {dep_id} ended {dep_state}"


def new_job_state(
    deps: Sequence[tuple[int, str, str]], now: float
) -> tuple[str, float | None, str | None, list[int]]:
    """What a new job with these (seq, id, state) dependencies is: (state, finished_at,
    error, seqs of the dependencies it waits for). A job whose dependency can no longer
    complete is over before it starts."""
    ended = first_ended([(d_id, d_state) for _, d_id, d_state in deps])
    if ended is not None:
        return "canceled", now, dependency_ended(*ended), []
    return "pending", None, None, [seq for seq, _, state in deps if state != "completed"]


def first_ended(deps: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The first of (id, state) dependencies that can no longer complete, if any."""
    return next(((d_id, state) for d_id, state in deps if state in ENDS_DEPENDENTS), None)


# -- ending runs ---------------------------------------------------------------------------


def late_result(
    owner: str | None,
    change: Transition,
    exit_code: int | None,
    signal: int | None,
    now: float,
) -> dict:
    """What a run's history keeps of a result the fence rejected."""
    late: dict = {"owner": owner, "outcome": change.outcome, "at": now}
    for name, value in (("exit_code", exit_code), ("signal", signal)):
        if value is not None:
            late[name] = value
    if change.error:
        late["error"] = change.error
    return late


# -- changing jobs after enqueue --------------------------------------------------------


def retry_blockers(job_id: str, state: str, deps: Sequence[tuple[str, str]]) -> int:
    """Check that a job may run again; returns how many dependencies it will wait for.

    Only a finished job is retried, and not while a dependency can never complete
    (it would be canceled at once): the user retries that one first.
    """
    if state not in TERMINAL_STATES:
        raise StoreError(
            "conflict",
            f"cannot retry job {job_id!r}: it is {state}; only a completed, dead or "
            "canceled job can be retried",
        )
    ended = first_ended(deps)
    if ended is not None:
        raise StoreError(
            "conflict",
            f"cannot retry job {job_id!r}: its dependency {ended[0]!r} is {ended[1]}; "
            "retry that first",
        )
    return sum(1 for _, dep_state in deps if dep_state != "completed")


def retry_key_held(job_id: str, unique_key: str, holder_id: str | None) -> StoreError:
    return StoreError(
        "conflict",
        f"cannot retry job {job_id!r}: its unique key {unique_key!r} is held by job "
        f"{holder_id or '?'!r}",
    )


def check_edit(changes: dict) -> None:
    check_fields(changes, EDITABLE, "cannot edit field")
    if not changes:
        raise StoreError("bad_request", "nothing to change")


def edit_refused(job_id: str, state: str) -> StoreError:
    """Why a job that is no longer pending cannot be edited."""
    why = {
        "processing": "it has started",
        "failed": "it has started (it is waiting for a retry)",
    }.get(state, "it has finished")
    return StoreError(
        "conflict",
        f"cannot edit job {job_id!r}: it is {state} and {why}; only a pending job can be edited",
    )


def dlq_retry_refused(job_id: str, state: str, unique_key: str | None) -> StoreError:
    """Why one job named to `dlq retry` was not moved back."""
    if state == "dead":
        return StoreError(
            "conflict", f"job {job_id!r}: its unique key {unique_key!r} is held by a live job"
        )
    return StoreError("conflict", f"job {job_id!r} is {state}, not in the DLQ")


def check_purgeable(state: str) -> None:
    if state not in TERMINAL_STATES:
        raise StoreError(
            "bad_request", f"only finished jobs can be purged ({', '.join(TERMINAL_STATES)})"
        )


def log_run(job_id: str, state: str, runs: int, run: int | None) -> int:
    """The run whose output `logs` reads: the given one, else the latest."""
    if runs == 0:
        raise StoreError("not_found", f"job {job_id!r} has not run yet (it is {state})")
    run = run or runs
    if run > runs:
        raise StoreError("not_found", f"job {job_id!r} has no run {run}")
    return run
