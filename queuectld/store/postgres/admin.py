"""Dependencies, unique keys and re-running in the PostgreSQL store: the statements
that are PostgreSQL's own (the portable ones are in `store/shared/`).

The order of a batch's inserts and the cascade of a job's end are
`store/dependencies.py`'s; the rows are these methods'. With several daemons on
one database, a dependency read at enqueue or retry is locked (FOR SHARE) until
commit: a daemon finishing it meanwhile waits, and then sees the new edge when
it recounts its dependents, so no dependent is left blocked by a job that has
completed.

Unique keys: a partial unique index admits one live job per key; inserts use
ON CONFLICT DO NOTHING against it, so two enqueues of one key, on any daemons,
cannot both win.
"""

from __future__ import annotations

from psycopg import errors

from queuectld.store import rules
from queuectld.store.base import JobRow, NewJob
from queuectld.store.dependencies import DependencyMixin
from queuectld.store.postgres.connection import Database
from queuectld.store.rows import (
    INSERT_JOB_COLUMNS,
    after_column,
    batch_environment_ids,
    insert_job_sql,
    job_row,
)
from queuectld.store.sql import LIVE

INSERT_JOB = insert_job_sql("%s")
UNIQUE_CONFLICT = (
    f"ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN {LIVE} DO NOTHING"
)
# The plain path sends a batch as one array per column: far cheaper to bind and to
# plan than a multi-row VALUES list. The types of INSERT_JOB_COLUMNS, by name.
_TYPES = {
    "id": "text", "command": "text", "state": "text", "queue": "text",
    "priority": "bigint", "max_retries": "bigint", "timeout": "float8", "env_id": "bigint",
    "env": "bytea", "created_at": "float8", "updated_at": "float8", "run_at": "float8",
    "finished_at": "float8", "last_error": "text", "blocked": "integer", "after": "text",
    "unique_key": "text", "run_uid": "bigint", "run_gid": "bigint",
}  # fmt: skip
_COLUMN_TYPES = [_TYPES[column] for column in INSERT_JOB_COLUMNS.split(", ")]
INSERT_ARRAYS = (
    f"INSERT INTO jobs ({INSERT_JOB_COLUMNS}) SELECT * FROM unnest("
    + ", ".join(f"%s::{kind}[]" for kind in _COLUMN_TYPES)
    + ") ON CONFLICT (id) DO NOTHING RETURNING id"
)
INSERT_CHUNK = 5000  # jobs per statement


class ControlMixin(DependencyMixin):
    db: Database

    # -- enqueue ---------------------------------------------------------------------

    def _insert_plain(self, jobs: list[NewJob], now: float) -> list[str]:
        """The fast path for a batch with no dependencies and no unique keys: one
        statement per INSERT_CHUNK jobs; a taken id is seen in what the insert
        returns, not raised, and the batch is inserted again with fresh ids."""
        env_ids = batch_environment_ids(jobs, self._environment_id)
        ids = rules.batch_ids(jobs)
        for _ in range(rules.ID_ATTEMPTS):
            rows = [
                job_row(job, job_id, env_id, now)
                for job, job_id, env_id in zip(jobs, ids, env_ids, strict=True)
            ]
            self.db.execute("SAVEPOINT insert_rows")
            inserted: set[str] = set()
            for start in range(0, len(rows), INSERT_CHUNK):
                columns = _as_arrays(rows[start : start + INSERT_CHUNK])
                inserted.update(r[0] for r in self.db.all(INSERT_ARRAYS, columns))
            if len(inserted) == len(ids):
                self.db.execute("RELEASE SAVEPOINT insert_rows")
                return ids
            # Rows before the taken id stay inserted: the savepoint takes them back, so
            # the batch keeps its order.
            self.db.execute("ROLLBACK TO SAVEPOINT insert_rows")
            self.db.execute("RELEASE SAVEPOINT insert_rows")
            ids = rules.redraw_taken(jobs, ids, set(ids) - inserted)
        raise rules.no_free_ids()

    def _existing_dep(self, dep_id: str, job_id: str) -> tuple[int, str, str]:
        row = self.db.one("SELECT seq, id, state FROM jobs WHERE id = %s FOR SHARE", (dep_id,))
        if row is None:
            raise rules.missing_dependency(job_id, dep_id)
        return row

    def _insert_one(
        self, job: NewJob, job_id: str, deps: list[tuple[int, str, str]], now: float
    ) -> tuple[tuple[int, str, str], bool]:
        state, finished_at, error, waiting_on = rules.new_job_state(deps, now)
        env_id = self._environment_id(job.cwd, job.environ)
        after = after_column([d_id for _, d_id, _ in deps])
        for attempt in range(rules.ID_ATTEMPTS):
            row_values = job_row(job, job_id, env_id, now, state, finished_at, error,
                                 len(waiting_on), after)  # fmt: skip
            try:
                with self.db.attempt("insert_one"):
                    seq = self.db.value(f"{INSERT_JOB} {UNIQUE_CONFLICT} RETURNING seq", row_values)
            except errors.UniqueViolation:
                if job.id or attempt == rules.ID_ATTEMPTS - 1:
                    raise rules.id_taken(job_id) from None
                job_id = rules.fresh_id({job_id})  # a generated id that a stored job has
                continue
            if seq is not None:
                self.db.executemany(
                    "INSERT INTO job_deps (dep_seq, job_seq) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING",
                    [(dep_seq, seq) for dep_seq in waiting_on],
                )
                return (seq, job_id, state), True
            holder = self.db.one(
                f"SELECT seq, id, state FROM jobs WHERE unique_key = %s AND state IN {LIVE}",
                (job.unique_key,),
            )
            if holder is not None:
                return holder, False
            # The holder ended between the two statements (another daemon): try again.
        raise rules.no_free_ids()

    # -- re-running ------------------------------------------------------------------

    def retry_job(self, job_id: str, now: float) -> JobRow:
        row = self.db.one(
            "SELECT seq, state, unique_key FROM jobs WHERE id = %s FOR UPDATE", (job_id,)
        )
        if row is None:
            raise rules.no_job(job_id)
        seq, state, unique_key = row
        deps = self.db.all(
            "SELECT j.id, j.state FROM job_deps d JOIN jobs j ON j.seq = d.dep_seq "
            "WHERE d.job_seq = %s ORDER BY j.seq FOR SHARE OF j",
            (seq,),
        )
        blocked = rules.retry_blockers(job_id, state, deps)
        try:
            with self.db.attempt("retry"):
                self.db.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, blocked = %s, "
                    "run_at = %s, updated_at = %s, finished_at = NULL WHERE seq = %s",
                    (blocked, now, now, seq),
                )
        except errors.UniqueViolation:
            holder = self.db.value(
                f"SELECT id FROM jobs WHERE unique_key = %s AND state IN {LIVE}", (unique_key,)
            )
            raise rules.retry_key_held(job_id, unique_key, holder) from None
        # Dependents that have not run yet wait for this run too.
        self._recount_dependents(seq)
        return self.get_job(job_id, history=False)

    def retry_dead_jobs(
        self,
        job_id: str | None,
        now: float,
        queue: str | None = None,
        since: float | None = None,
    ) -> list[str]:
        # A dead job whose unique key a live job holds now stays dead (and listed), and
        # of dead jobs sharing a key only the oldest goes back; retrying one by id says
        # why it did not.
        where, params = ["state = 'dead'"], []
        for clause, value in (
            ("id = %s", job_id),
            ("queue = %s", queue),
            ("finished_at >= %s", since),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        ids = [
            r[0]
            for r in self.db.all(
                "WITH dead AS ("
                "  SELECT seq, unique_key, row_number() OVER ("
                "    PARTITION BY unique_key ORDER BY seq) AS nth"
                f"  FROM jobs WHERE {' AND '.join(where)}), "
                "chosen AS ("
                "  SELECT seq FROM dead WHERE unique_key IS NULL OR (nth = 1 AND NOT EXISTS ("
                f"    SELECT 1 FROM jobs l WHERE l.unique_key = dead.unique_key "
                f"    AND l.state IN {LIVE}))), "
                "moved AS ("
                "  UPDATE jobs SET state = 'pending', attempts = 0, run_at = %s, "
                "  updated_at = %s, finished_at = NULL "
                "  WHERE seq IN (SELECT seq FROM chosen) AND state = 'dead' RETURNING seq, id) "
                "SELECT id FROM moved ORDER BY seq",
                (*params, now, now),
            )
        ]
        if job_id is not None and not ids:
            row = self.db.one("SELECT state, unique_key FROM jobs WHERE id = %s", (job_id,))
            if row is None:
                raise rules.no_job(job_id)
            raise rules.dlq_retry_refused(job_id, *row)
        return ids


def _as_arrays(rows: list[tuple]) -> list[list]:
    """The rows as one list per column, each value of its column's type (an array
    holds one type: a run_at given as 1 goes as 1.0)."""
    columns = []
    for kind, values in zip(_COLUMN_TYPES, zip(*rows, strict=True), strict=True):
        if kind == "float8":
            values = [None if v is None else float(v) for v in values]
        columns.append(list(values))
    return columns
