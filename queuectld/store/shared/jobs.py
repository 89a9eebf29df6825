"""Reading jobs, and the changes of a job that are plain SQL in every backend:
cancel, edit, the choice of what purge and retention delete, dependents' rows,
settings, and the lookups of people watching (the live view, completion)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from queuectld.store import rules
from queuectld.store.base import Canceled, JobRow
from queuectld.store.rows import JOB_COLUMNS, RUN_COLUMNS, fit_page, job_from_row, run_from_row
from queuectld.store.shared.statements import Statements
from queuectld.store.sql import WAITING


class JobsMixin(ABC):
    sql: Statements
    # LIMIT with no limit, so that OFFSET may follow (SQLite has no LIMIT ALL).
    NO_LIMIT = "LIMIT -1"

    def get_job(self, job_id: str, history: bool = True) -> JobRow | None:
        row = self.sql.one(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            return None
        if not history:
            return job_from_row(row)
        runs = self.sql.all(
            f"SELECT {RUN_COLUMNS} FROM runs r LEFT JOIN daemons d ON d.id = r.owner "
            "WHERE r.job_seq = ? ORDER BY r.run",
            (row[0],),
        )
        cwd, env_blob = self.sql.one(
            "SELECT e.cwd, j.env FROM jobs j JOIN environments e ON e.id = j.env_id "
            "WHERE j.seq = ?",
            (row[0],),
        )
        return job_from_row(row, tuple(run_from_row(r) for r in runs), cwd, env_blob)

    def job_log_path(self, job_id: str, run: int | None) -> tuple[int, int, str, str | None]:
        """(seq, run, state, stored log path) of a job's latest or given run."""
        row = self.sql.one("SELECT seq, runs, state FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise rules.no_job(job_id)
        seq, runs, state = row
        run = rules.log_run(job_id, state, runs, run)
        path = self.sql.one("SELECT log_path FROM runs WHERE job_seq = ? AND run = ?", (seq, run))
        return seq, run, state, path[0] if path else None

    def list_jobs(
        self, states: list[str] | None, queue: str | None, limit: int, after: int | None
    ) -> tuple[list[JobRow], int | None]:
        where, params = ["seq > ?"], [after or 0]
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        if queue:
            where.append("queue = ?")
            params.append(queue)
        rows = self.sql.all(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
            (*params, limit + 1),
        )
        rows, more = fit_page(rows, limit)
        return [job_from_row(r) for r in rows], (rows[-1][0] if more else None)

    def job_state(self, job_id: str) -> str | None:
        return self.sql.value("SELECT state FROM jobs WHERE id = ?", (job_id,))

    def _raise_for_state(self, job_id: str, action: str) -> None:
        state = self.job_state(job_id)
        if state is None:
            raise rules.no_job(job_id)
        raise rules.wrong_state(job_id, action, state)

    # -- changing jobs ---------------------------------------------------------

    def cancel_waiting_job(self, job_id: str, now: float) -> Canceled:
        seq = self.sql.value(
            "UPDATE jobs SET state = 'canceled', updated_at = ?, finished_at = ?, "
            f"last_error = 'canceled by user' WHERE id = ? AND state IN {WAITING} RETURNING seq",
            (now, now, job_id),
        )
        if seq is None:
            self._raise_for_state(job_id, "cancel")
        canceled = self.settle_dependents(seq, job_id, "canceled", now)
        return Canceled(self.get_job(job_id, history=False), canceled)

    def edit_job(self, job_id: str, changes: dict, now: float) -> JobRow:
        rules.check_edit(changes)
        # Column names come from rules.EDITABLE, never from the caller; no constraint
        # covers these columns, so the update cannot conflict.
        assignments = ", ".join(f"{key} = ?" for key in changes)
        changed = self.sql.rowcount(
            f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ? AND state = 'pending'",
            (*changes.values(), now, job_id),
        )
        if not changed:
            state = self.job_state(job_id)
            if state is None:
                raise rules.no_job(job_id)
            raise rules.edit_refused(job_id, state)
        return self.get_job(job_id, history=False)

    def _cancel_dependents(self, dep_seq: int, error: str, now: float) -> list[tuple[int, str]]:
        """Cancel the pending jobs still waiting for `dep_seq`; their (seq, id)."""
        return self.sql.all(
            "UPDATE jobs SET state = 'canceled', updated_at = ?, finished_at = ?, "
            "last_error = ? WHERE seq IN (SELECT job_seq FROM job_deps WHERE dep_seq = ?) "
            "AND state = 'pending' AND blocked > 0 RETURNING seq, id",
            (now, now, error, dep_seq),
        )

    def _recount_dependents(self, seq: int) -> None:
        """Recount (rather than decrement) the dependencies left of the pending jobs
        waiting for `seq`, so a dependency that completes twice, after a retry, is
        never subtracted twice."""
        self.sql.rowcount(
            "UPDATE jobs SET blocked = ("
            "  SELECT count(*) FROM job_deps d JOIN jobs j ON j.seq = d.dep_seq"
            "  WHERE d.job_seq = jobs.seq AND j.state <> 'completed') "
            "WHERE seq IN (SELECT job_seq FROM job_deps WHERE dep_seq = ?) AND state = 'pending'",
            (seq,),
        )

    # -- what purge and retention delete ---------------------------------------

    def purge_jobs(
        self, state: str, finished_before: float, queue: str | None, limit: int
    ) -> tuple[int, list[str]]:
        rules.check_purgeable(state)
        sql = "SELECT seq FROM jobs WHERE state = ? AND finished_at < ?"
        params: list = [state, finished_before]
        if queue is not None:
            sql += " AND queue = ?"
            params.append(queue)
        seqs = [r[0] for r in self.sql.all(sql + " ORDER BY seq LIMIT ?", (*params, limit))]
        # The same deletion as `dlq purge` and retention: runs, dependency edges and
        # environments no job or schedule uses any more go with the jobs.
        return len(seqs), self._delete_jobs(seqs)

    def prune_finished(
        self, finished_before: float, keep: int, limit: int
    ) -> tuple[int, list[str]]:
        seqs = [
            r[0]
            for r in self.sql.all(
                "SELECT seq FROM jobs WHERE state IN ('completed', 'canceled') "
                "AND finished_at < ? ORDER BY finished_at LIMIT ?",
                (finished_before, limit),
            )
        ]
        if keep and len(seqs) < limit:
            # Beyond the newest `keep` finished jobs, oldest first.
            chosen = set(seqs)
            seqs += [
                r[0]
                for r in self.sql.all(
                    "SELECT seq FROM jobs WHERE state IN ('completed', 'canceled') "
                    f"ORDER BY finished_at DESC {self.NO_LIMIT} OFFSET ?",
                    (keep,),
                )
                if r[0] not in chosen
            ][: limit - len(seqs)]
        return len(seqs), self._delete_jobs(seqs)

    def purge_dead(self, job_id: str | None) -> tuple[list[str], list[str]]:
        if job_id is None:
            rows = self.sql.all("SELECT seq, id FROM jobs WHERE state = 'dead' ORDER BY seq")
        else:
            rows = self.sql.all(
                "SELECT seq, id FROM jobs WHERE id = ? AND state = 'dead'", (job_id,)
            )
            if not rows:
                self._raise_for_state(job_id, "purge")
        return [r[1] for r in rows], self._delete_jobs([r[0] for r in rows])

    # -- identity and settings -------------------------------------------------

    def instance_id(self) -> str:
        return self.sql.value("SELECT value FROM meta WHERE key = 'instance'")

    def config_items(self) -> dict[str, str]:
        return dict(self.sql.all("SELECT key, value FROM config"))

    def set_config(self, key: str, value: str) -> None:
        self.sql.rowcount(
            "INSERT INTO config (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- for people watching: the live view, shell completion -------------------

    def next_waiting_jobs(self, limit: int) -> list[JobRow]:
        rows = self.sql.all(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state IN {WAITING} ORDER BY run_at, seq LIMIT ?",
            (limit,),
        )
        return [job_from_row(row) for row in rows]

    def job_ids_with_prefix(self, prefix: str, states: list[str] | None, limit: int) -> list[str]:
        """Through the unique index on `jobs.id`, which compares bytewise."""
        sql = "SELECT id FROM jobs WHERE id >= ? AND id < ?"
        params: list[Any] = [prefix, prefix + "\U0010ffff"]
        if states:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            params.extend(states)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return [row[0] for row in self.sql.all(sql, params)]

    @abstractmethod
    def _delete_jobs(self, seqs: list[int]) -> list[str]:
        """Delete jobs with their runs, dependency edges and unused environments;
        return the log paths of their runs."""
