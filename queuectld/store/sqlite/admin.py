"""Dependencies, unique keys and re-running in the SQLite store: the statements
that are SQLite's own (the portable ones are in `store/shared/`).

Dependencies: `job_deps` holds one row per (dependency, dependent) and
`jobs.blocked` counts the dependencies that have not completed (the claim index
is partial on it); the order of inserts and the cascade of a job's end are
`store/dependencies.py`'s, the rows these methods'.

Unique keys: a partial unique index admits one live job per key; inserts use
ON CONFLICT DO NOTHING against it, so two enqueues of one key cannot both win
whatever the interleaving.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

from queuectld.store import rules
from queuectld.store.base import JobRow, NewJob
from queuectld.store.dependencies import DependencyMixin
from queuectld.store.rows import after_column, insert_job_sql, job_row
from queuectld.store.sql import LIVE

INSERT_JOB = insert_job_sql("?")
UNIQUE_CONFLICT = (
    f"ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN {LIVE} DO NOTHING"
)


class ControlMixin(DependencyMixin):
    conn: sqlite3.Connection

    def _existing_dep(self, dep_id: str, job_id: str) -> tuple[int, str, str]:
        row = self.conn.execute(
            "SELECT seq, id, state FROM jobs WHERE id = ?", (dep_id,)
        ).fetchone()
        if row is None:
            raise rules.missing_dependency(job_id, dep_id)
        return row

    def _insert_one(
        self, job: NewJob, job_id: str, deps: list[tuple[int, str, str]], now: float
    ) -> tuple[tuple[int, str, str], bool]:
        """Insert one job: ((seq, id, state), True); or, when a live job holds its
        unique key, that job's ((seq, id, state), False)."""
        state, finished_at, error, waiting_on = rules.new_job_state(deps, now)
        env_id = self._environment_id(job.cwd, job.environ)
        after = after_column([d_id for _, d_id, _ in deps])
        for attempt in range(rules.ID_ATTEMPTS):
            row_values = job_row(job, job_id, env_id, now, state, finished_at, error,
                                 len(waiting_on), after)  # fmt: skip
            try:
                row = self.conn.execute(
                    f"{INSERT_JOB} {UNIQUE_CONFLICT} RETURNING seq", row_values
                ).fetchall()
                break
            except sqlite3.IntegrityError:
                if job.id or attempt == rules.ID_ATTEMPTS - 1:
                    raise rules.id_taken(job_id) from None
                job_id = rules.fresh_id({job_id})  # a generated id that a stored job has
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

    # -- re-running ----------------------------------------------------------------

    def retry_job(self, job_id: str, now: float) -> JobRow:
        row = self.conn.execute(
            "SELECT seq, state, unique_key FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise rules.no_job(job_id)
        seq, state, unique_key = row
        deps = self.conn.execute(
            "SELECT j.id, j.state FROM job_deps d JOIN jobs j ON j.seq = d.dep_seq "
            "WHERE d.job_seq = ? ORDER BY j.seq",
            (seq,),
        ).fetchall()
        blocked = rules.retry_blockers(job_id, state, deps)
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
            raise rules.retry_key_held(job_id, unique_key, holder[0] if holder else None) from None
        # Dependents that have not run yet wait for this run too.
        self._recount_dependents(seq)
        return self.get_job(job_id, history=False)
