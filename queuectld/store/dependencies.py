"""How a batch of new jobs is inserted and how a job's end settles its dependents,
for every SQL backend: the order and the cascade live here, the row operations in
the backend (`_insert_plain`, `_existing_dep`, `_insert_one`) and in
`shared/jobs.py` (`_cancel_dependents`, `_recount_dependents`).

Dependencies: one row per (dependency, dependent) edge and a `blocked` count of the
dependencies that have not completed on each job; only jobs with `blocked = 0` are
claimable. When a job ends, its dependents are recounted (completed) or canceled
with their own dependents (dead, canceled), in the same transaction as the state
change, so no dependent is ever left waiting on a job that will never complete.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from queuectld.store import rules
from queuectld.store.base import Enqueued, NewJob


class DependencyMixin(ABC):
    def add_jobs(self, jobs: list[NewJob], now: float) -> list[str]:
        """Insert jobs; one whose unique key is held gets the holder's id."""
        return self.insert_jobs(jobs, now, "ignore").ids

    def insert_jobs(self, jobs: list[NewJob], now: float, on_duplicate: str = "ignore") -> Enqueued:
        rules.check_on_duplicate(on_duplicate)
        if not any(job.after or job.unique_key for job in jobs):
            return Enqueued(self._insert_plain(jobs, now))
        ids = rules.batch_ids(jobs)
        position = {job_id: index for index, job_id in enumerate(ids)}
        edges = rules.batch_edges(jobs, ids, position)
        # Resolved (seq, id, state) of each job of the batch once handled: its own row,
        # or the live job holding its unique key.
        resolved: dict[int, tuple[int, str, str]] = {}
        existing: list[str] = []
        for index in rules.insert_order(ids, edges):
            job = jobs[index]
            deps = [
                resolved[dep] if isinstance(dep, int) else self._existing_dep(dep, ids[index])
                for dep in rules.dependencies(job, position)
            ]
            row, inserted = self._insert_one(job, ids[index], deps, now)
            if not inserted:
                if on_duplicate == "error":
                    raise rules.unique_key_taken(job.unique_key, row[1], row[2])
                existing.append(row[1])
            resolved[index] = row
        return Enqueued([resolved[i][1] for i in range(len(jobs))], existing)

    def settle_dependents(self, seq: int, job_id: str, state: str, now: float) -> list[str]:
        """What a job's end in `state` does to the jobs waiting for it; returns the ids
        of those it canceled (and of theirs in turn)."""
        if state == "completed":
            self._recount_dependents(seq)
            return []
        if state not in rules.ENDS_DEPENDENTS:
            return []
        canceled: list[str] = []
        frontier = [(seq, job_id, state)]
        while frontier:
            dep_seq, dep_id, dep_state = frontier.pop()
            error = rules.dependency_ended(dep_id, dep_state)
            for row_seq, row_id in self._cancel_dependents(dep_seq, error, now):
                canceled.append(row_id)
                frontier.append((row_seq, row_id, "canceled"))
        return canceled

    @abstractmethod
    def _insert_plain(self, jobs: list[NewJob], now: float) -> list[str]:
        """Insert a batch with no dependencies and no unique keys; their ids."""

    @abstractmethod
    def _existing_dep(self, dep_id: str, job_id: str) -> tuple[int, str, str]:
        """(seq, id, state) of a stored dependency of `job_id`; missing_dependency if none."""

    @abstractmethod
    def _insert_one(
        self, job: NewJob, job_id: str, deps: list[tuple[int, str, str]], now: float
    ) -> tuple[tuple[int, str, str], bool]:
        """Insert one job (its state from rules.new_job_state): ((seq, id, state), True);
        or, when a live job holds its unique key, that job's ((seq, id, state), False)."""
