"""Dependencies, unique keys, re-running, editing and purging in the SQLite store.

Dependencies: `job_deps` holds one row per (dependency, dependent) and
`jobs.blocked` counts the dependencies that have not completed. Only jobs
with `blocked = 0` are claimable (the claim index is partial on it). When a
job ends, `settle_dependents` recounts its dependents (completed) or cancels
them and their own dependents (dead, canceled), in the same transaction as
the state change, so no dependent is ever left waiting on a job that will
never complete.

Unique keys: a partial unique index admits one live job per key; inserts use
ON CONFLICT DO NOTHING against it, so two enqueues of one key cannot both win
whatever the interleaving.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
from collections import Counter

from protocol.messages import TERMINAL_STATES
from queuectld.store.base import Enqueued, NewJob, StoreError
from queuectld.store.sql import LIVE
from queuectld.store.sqlite.rows import ID_ATTEMPTS, INSERT_JOB, batch_ids, fresh_id, job_row

UNIQUE_CONFLICT = (
    f"ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN {LIVE} DO NOTHING"
)
EDITABLE = ("command", "priority", "run_at", "queue")


class ControlMixin:
    conn: sqlite3.Connection

    # -- enqueue with dependencies and unique keys -----------------------------

    def insert_jobs(self, jobs: list[NewJob], now: float, on_duplicate: str = "ignore") -> Enqueued:
        if on_duplicate not in ("ignore", "error"):
            raise StoreError(
                "bad_request", f"on_duplicate must be ignore or error, not {on_duplicate!r}"
            )
        if not any(job.after or job.unique_key for job in jobs):
            return Enqueued(self._insert_plain(jobs, now))
        ids = batch_ids(jobs)
        position = {job_id: index for index, job_id in enumerate(ids)}
        edges = [self._batch_deps(jobs, ids, position, index) for index in range(len(jobs))]
        # Resolved (seq, id, state) of each job of the batch once handled: its own row,
        # or the live job holding its unique key.
        resolved: dict[int, tuple[int, str, str]] = {}
        existing: list[str] = []
        for index in _topological_order(ids, edges):
            job = jobs[index]
            deps = [
                resolved[dep] if isinstance(dep, int) else self._existing_dep(dep, ids[index])
                for dep in _dependencies(job, position)
            ]
            row, inserted = self._insert_one(job, ids[index], deps, now)
            if not inserted:
                if on_duplicate == "error":
                    raise StoreError(
                        "conflict",
                        f"unique key {job.unique_key!r} is held by job {row[1]!r} ({row[2]})",
                    )
                existing.append(row[1])
            resolved[index] = row
        return Enqueued([resolved[i][1] for i in range(len(jobs))], existing)

    def _batch_deps(
        self, jobs: list[NewJob], ids: list[str], position: dict[str, int], index: int
    ) -> list[int]:
        """Indexes of the batch's own jobs that job `index` waits for."""
        edges = []
        for dep in jobs[index].after:
            if dep == ids[index]:
                raise StoreError("invalid_job", f"job {dep!r} cannot run after itself")
            if dep in position:
                edges.append(position[dep])
        return edges

    def _existing_dep(self, dep_id: str, job_id: str) -> tuple[int, str, str]:
        row = self.conn.execute(
            "SELECT seq, id, state FROM jobs WHERE id = ?", (dep_id,)
        ).fetchone()
        if row is None:
            raise StoreError("invalid_job", f"job {job_id!r}: dependency {dep_id!r} does not exist")
        return row

    def _insert_one(
        self, job: NewJob, job_id: str, deps: list[tuple[int, str, str]], now: float
    ) -> tuple[tuple[int, str, str], bool]:
        """Insert one job: ((seq, id, state), True); or, when a live job holds its
        unique key, that job's ((seq, id, state), False)."""
        ended = next(
            ((d_id, d_state) for _, d_id, d_state in deps if d_state in ("dead", "canceled")),
            None,
        )
        waiting_on = [seq for seq, _, state in deps if state != "completed"]
        state, finished_at, error = "pending", None, None
        if ended is not None:
            # Its dependency can no longer complete: the job is over before it starts.
            state, finished_at = "canceled", now
            error = f"dependency {ended[0]} ended {ended[1]}"
            waiting_on = []
        env_id = self._environment_id(job.cwd, job.environ)
        after = json.dumps([d_id for _, d_id, _ in deps]) if deps else None
        for attempt in range(ID_ATTEMPTS):
            row_values = job_row(job, job_id, env_id, now, state, finished_at, error,
                                 len(waiting_on), after)  # fmt: skip
            try:
                row = self.conn.execute(
                    f"{INSERT_JOB} {UNIQUE_CONFLICT} RETURNING seq", row_values
                ).fetchall()
                break
            except sqlite3.IntegrityError:
                if job.id or attempt == ID_ATTEMPTS - 1:
                    raise StoreError("conflict", f"job id {job_id!r} already exists") from None
                job_id = fresh_id({job_id})  # a generated id that a stored job has
        if not row:
            holder = self.conn.execute(
                f"SELECT seq, id, state FROM jobs WHERE unique_key = ? AND state IN {LIVE}",
                (job.unique_key,),
            ).fetchone()
            return holder, False
        self.conn.executemany(
            "INSERT OR IGNORE INTO job_deps (dep_seq, job_seq) VALUES (?, ?)",
            [(dep_seq, row[0][0]) for dep_seq in waiting_on],
        )
        self.count_new_jobs(Counter({(job.queue, state): 1}))
        return (row[0][0], job_id, state), True

    # -- settling dependents ------------------------------------------------------

    def settle_dependents(self, seq: int, job_id: str, state: str, now: float) -> list[str]:
        if state == "completed":
            self._recount_dependents(seq)
            return []
        if state not in ("dead", "canceled"):
            return []
        canceled: list[str] = []
        frontier = [(seq, job_id, state)]
        while frontier:
            dep_seq, dep_id, dep_state = frontier.pop()
            rows = self.conn.execute(
                "UPDATE jobs SET state = 'canceled', updated_at = ?, finished_at = ?, "
                "last_error = ? WHERE seq IN (SELECT job_seq FROM job_deps WHERE dep_seq = ?) "
                "AND state = 'pending' AND blocked > 0 RETURNING seq, id",
                (now, now, f"dependency {dep_id} ended {dep_state}", dep_seq),
            ).fetchall()
            for row_seq, row_id in rows:
                canceled.append(row_id)
                frontier.append((row_seq, row_id, "canceled"))
        return canceled

    def _recount_dependents(self, seq: int) -> None:
        """Recount (rather than decrement) so a dependency that completes twice, after
        a retry, is never subtracted twice."""
        self.conn.execute(
            "UPDATE jobs SET blocked = ("
            "  SELECT count(*) FROM job_deps d JOIN jobs j ON j.seq = d.dep_seq"
            "  WHERE d.job_seq = jobs.seq AND j.state <> 'completed') "
            "WHERE seq IN (SELECT job_seq FROM job_deps WHERE dep_seq = ?) AND state = 'pending'",
            (seq,),
        )

    # -- re-running ----------------------------------------------------------------

    def retry_job(self, job_id: str, now: float) -> dict:
        row = self.conn.execute(
            "SELECT seq, state, unique_key FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise StoreError("not_found", f"no job {job_id!r}")
        seq, state, unique_key = row
        if state not in TERMINAL_STATES:
            raise StoreError(
                "conflict",
                f"cannot retry job {job_id!r}: it is {state}; only a completed, dead or "
                "canceled job can be retried",
            )
        deps = self.conn.execute(
            "SELECT j.id, j.state FROM job_deps d JOIN jobs j ON j.seq = d.dep_seq "
            "WHERE d.job_seq = ? ORDER BY j.seq",
            (seq,),
        ).fetchall()
        for dep_id, dep_state in deps:
            if dep_state in ("dead", "canceled"):
                raise StoreError(
                    "conflict",
                    f"cannot retry job {job_id!r}: its dependency {dep_id!r} is {dep_state}; "
                    "retry that first",
                )
        blocked = sum(1 for _, dep_state in deps if dep_state != "completed")
        try:
            self.conn.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, blocked = ?, run_at = ?, "
                "updated_at = ?, finished_at = NULL WHERE seq = ?",
                (blocked, now, now, seq),
            )
        except sqlite3.IntegrityError:
            holder = self.conn.execute(
                f"SELECT id FROM jobs WHERE unique_key = ? AND state IN {LIVE}", (unique_key,)
            ).fetchone()
            raise StoreError(
                "conflict",
                f"cannot retry job {job_id!r}: its unique key {unique_key!r} is held by job "
                f"{holder[0] if holder else '?'!r}",
            ) from None
        # Dependents that have not run yet wait for this run too.
        self._recount_dependents(seq)
        return self.get_job(job_id, history=False)

    # -- editing ---------------------------------------------------------------------

    def edit_job(self, job_id: str, changes: dict, now: float) -> dict:
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise StoreError("bad_request", f"cannot edit field {sorted(unknown)[0]!r}")
        if not changes:
            raise StoreError("bad_request", "nothing to change")
        assignments = ", ".join(f"{key} = ?" for key in changes)
        try:
            changed = self.conn.execute(
                f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ? AND state = 'pending'",
                (*changes.values(), now, job_id),
            ).rowcount
        except sqlite3.IntegrityError as exc:
            raise StoreError("conflict", f"cannot edit job {job_id!r}: {exc}") from None
        if not changed:
            row = self.conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise StoreError("not_found", f"no job {job_id!r}")
            why = {
                "processing": "it has started",
                "failed": "it has started (it is waiting for a retry)",
            }.get(row[0], "it has finished")
            raise StoreError(
                "conflict",
                f"cannot edit job {job_id!r}: it is {row[0]} and {why}; only a pending job "
                "can be edited",
            )
        return self.get_job(job_id, history=False)

    # -- purging -----------------------------------------------------------------------

    def purge_jobs(
        self, state: str, finished_before: float, queue: str | None, limit: int
    ) -> tuple[int, list[str]]:
        if state not in TERMINAL_STATES:
            raise StoreError(
                "bad_request", f"only finished jobs can be purged ({', '.join(TERMINAL_STATES)})"
            )
        sql = "SELECT seq FROM jobs WHERE state = ? AND finished_at < ?"
        params: list = [state, finished_before]
        if queue is not None:
            sql += " AND queue = ?"
            params.append(queue)
        seqs = [r[0] for r in self.conn.execute(sql + " LIMIT ?", (*params, limit)).fetchall()]
        # The same deletion as `dlq purge` and retention: runs, dependency edges and
        # environments no job or schedule uses any more go with the jobs.
        return len(seqs), self._delete_jobs(seqs)


def _dependencies(job: NewJob, position: dict[str, int]) -> list:
    """The job's dependencies: batch indexes for the batch's own jobs, else ids."""
    return [position.get(dep, dep) for dep in dict.fromkeys(job.after)]


def _topological_order(ids: list[str], edges: list[list[int]]) -> list[int]:
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
