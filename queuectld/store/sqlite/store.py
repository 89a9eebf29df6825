"""The embedded default backend: one SQLite file in WAL mode.

Durability: `synchronous=FULL` makes every commit reach the disk before the
daemon acknowledges it; the runner shares one commit among all the calls that
arrived together, so the fsync is paid per batch rather than per job.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from queuectld.store import rules
from queuectld.store.base import (
    ClaimedJob,
    ForeignDatabase,
    NewJob,
    Store,
    StoreUnavailable,
)
from queuectld.store.rows import (
    CLAIM_COLUMNS,
    batch_environment_ids,
    claimed_job,
    job_row,
    pack_environment,
    unpack_environment,
)
from queuectld.store.shared.jobs import JobsMixin
from queuectld.store.shared.runs import RunsMixin
from queuectld.store.shared.settings import SettingsMixin
from queuectld.store.shared.stats import StatsMixin
from queuectld.store.sql import CLAIMABLE
from queuectld.store.sqlite.admin import INSERT_JOB, ControlMixin
from queuectld.store.sqlite.queues import QueueMixin
from queuectld.store.sqlite.schema import APPLICATION_ID, MIGRATIONS
from queuectld.store.sqlite.views import STATS_SQL

# Jobs deleted per statement: SQLite's limit on bound parameters is far above
# this; chunks keep statements small.
DELETE_CHUNK = 500
ENV_CACHE_SIZE = 64  # distinct environments remembered by their items; each holds a few kB
_UNAVAILABLE_HINTS = ("locked", "busy", "disk", "full", "readonly", "read-only", "i/o")


class CorruptDatabase(ForeignDatabase):
    """The file is queuectl's, but SQLite's own consistency check fails on it."""


def _unavailable(exc: sqlite3.Error) -> Exception:
    text = str(exc).lower()
    if any(hint in text for hint in _UNAVAILABLE_HINTS):
        return StoreUnavailable(f"database unavailable: {exc}")
    return exc


class SQLiteStatements:
    """The shared store code's statements (store/shared/) on this connection; a
    locked, busy or full database raises StoreUnavailable."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def _run(self, sql: str, params: Sequence) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from None

    def all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self._run(sql, params).fetchall()

    def one(self, sql: str, params: Sequence = ()) -> tuple | None:
        # fetchall: a statement with RETURNING must run to its end before a commit.
        rows = self._run(sql, params).fetchall()
        return rows[0] if rows else None

    def value(self, sql: str, params: Sequence = ()) -> Any:
        row = self.one(sql, params)
        return row[0] if row else None

    def rowcount(self, sql: str, params: Sequence = ()) -> int:
        return self._run(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from None


class SQLiteStore(
    ControlMixin,
    QueueMixin,
    StatsMixin,
    RunsMixin,
    JobsMixin,
    SettingsMixin,
    Store,
):
    STATS_SQL = STATS_SQL

    def __init__(self, path: str | os.PathLike, busy_timeout_ms: int = 5000):
        self.path = Path(path)
        if not self.path.exists():
            # Created 0600 before SQLite sees it: jobs carry their submitter's environment.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self.sql = SQLiteStatements(self.conn)
        self._check_identity()
        self._check_integrity()
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self._migrate()
        self._env_ids: dict[tuple, int] = {}  # (cwd, environment items) -> row id
        self._envs: dict[int, tuple[str, dict[str, str]]] = {}

    # -- opening ---------------------------------------------------------

    def _check_identity(self) -> None:
        try:
            app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            tables = self.conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise ForeignDatabase(f"{self.path} is not a readable SQLite database: {exc}") from None
        if app_id == 0 and tables == 0:
            return  # a new, empty file
        if app_id != APPLICATION_ID:
            raise ForeignDatabase(f"{self.path} is a SQLite database, but not queuectl's")
        if version > len(MIGRATIONS):
            raise ForeignDatabase(
                f"{self.path} has schema version {version}, newer than this queuectld "
                f"understands ({len(MIGRATIONS)}); upgrade queuectld"
            )

    def _check_integrity(self) -> None:
        """Refuse a damaged file before anything writes to it.

        quick_check reads every page once (O(size)) but skips the index-content
        cross-check of integrity_check, so it stays affordable at every start.
        """
        try:
            rows = self.conn.execute("PRAGMA quick_check(5)").fetchall()
        except sqlite3.DatabaseError as exc:
            raise CorruptDatabase(
                f"{self.path} is damaged: {exc}; restore it from a backup or move it aside"
            ) from None
        problems = [r[0] for r in rows if r[0] != "ok"]
        if problems:
            first = " ".join(problems[0].split())
            raise CorruptDatabase(
                f"{self.path} is damaged (integrity check: {first}); "
                "restore it from a backup or move it aside"
            )

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version, len(MIGRATIONS)):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(MIGRATIONS[number]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self.conn.execute(f"PRAGMA user_version = {number + 1}")
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    # -- transactions ----------------------------------------------------

    def begin(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from None

    def commit(self) -> None:
        try:
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from None

    def rollback(self) -> None:
        self._env_ids.clear()  # may name rows that the rollback removed
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def savepoint(self) -> None:
        self.conn.execute("SAVEPOINT call")

    def release(self) -> None:
        self.conn.execute("RELEASE call")

    def rollback_savepoint(self) -> None:
        self._env_ids.clear()
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK TO call")
            self.conn.execute("RELEASE call")

    def close(self) -> None:
        self.conn.close()

    # -- environments ----------------------------------------------------

    def _environment_id(self, cwd: str, environ: dict[str, str]) -> int:
        """Store each distinct (cwd, environment) once; jobs refer to it by id."""
        # A client sends the same environment, in the same order, with every request:
        # comparing its items costs far less than sorting, packing and hashing them.
        key = (cwd, tuple(environ.items()))
        env_id = self._env_ids.get(key)
        if env_id is not None:
            return env_id
        digest, env_blob = pack_environment(cwd, environ)
        row = self.conn.execute(
            "SELECT id FROM environments WHERE digest = ?", (digest,)
        ).fetchone()
        if row is None:
            cursor = self.conn.execute(
                "INSERT INTO environments (digest, cwd, environ) VALUES (?, ?, ?)",
                (digest, cwd, env_blob),
            )
            env_id = cursor.lastrowid
        else:
            env_id = row[0]
        if len(self._env_ids) >= ENV_CACHE_SIZE:
            self._env_ids.clear()
        self._env_ids[key] = env_id
        return env_id

    def _environment(self, env_id: int) -> tuple[str, dict[str, str]]:
        cached = self._envs.get(env_id)
        if cached is None:
            cwd, blob = self.conn.execute(
                "SELECT cwd, environ FROM environments WHERE id = ?", (env_id,)
            ).fetchone()
            cached = (cwd, unpack_environment(blob))
            if len(self._envs) > 256:
                self._envs.clear()
            self._envs[env_id] = cached
        return cached

    # -- jobs ------------------------------------------------------------

    def _insert_plain(self, jobs: list[NewJob], now: float) -> list[str]:
        """The fast path for a batch with no dependencies and no unique keys."""
        env_ids = batch_environment_ids(jobs, self._environment_id)
        ids = rules.batch_ids(jobs)
        for _ in range(rules.ID_ATTEMPTS):
            rows = [
                job_row(job, job_id, env_id, now)
                for job, job_id, env_id in zip(jobs, ids, env_ids, strict=True)
            ]
            # Rows before a failing one stay inserted: a savepoint takes them back.
            self.conn.execute("SAVEPOINT insert_rows")
            try:
                self.conn.executemany(INSERT_JOB, rows)
            except sqlite3.IntegrityError:
                self._undo("insert_rows")
                ids = self._replace_taken_ids(jobs, ids)
                continue
            except sqlite3.OperationalError as exc:
                self._undo("insert_rows")
                raise _unavailable(exc) from None
            self.conn.execute("RELEASE insert_rows")
            self.count_new_jobs(Counter((job.queue, "pending") for job in jobs))
            return ids
        raise rules.no_free_ids()

    def _undo(self, savepoint: str) -> None:
        self.conn.execute(f"ROLLBACK TO {savepoint}")
        self.conn.execute(f"RELEASE {savepoint}")

    def _replace_taken_ids(self, jobs: list[NewJob], ids: list[str]) -> list[str]:
        """A batch's ids with the generated ones that are taken drawn again; a conflict
        when an id the client chose is taken."""
        return rules.redraw_taken(jobs, ids, set(self._existing_ids(ids)))

    def _existing_ids(self, ids: list[str]) -> list[str]:
        found = []
        for job_id in ids:
            if self.conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone():
                found.append(job_id)
        return found

    def claim_due_jobs(self, now: float, limit: int, owner: str) -> list[ClaimedJob]:
        # Which jobs is decided per queue (limits, pauses) in the same transaction.
        prior_states = self._claimable_seqs(now, limit)
        if not prior_states:
            return []
        seqs = list(prior_states)
        rank = {seq: index for index, seq in enumerate(seqs)}
        rows = self.conn.execute(
            "UPDATE jobs SET state = 'processing', runs = runs + 1, started_at = ?, "
            f"updated_at = ? WHERE seq IN ({','.join('?' * len(seqs))}) AND {CLAIMABLE} "
            f"RETURNING {CLAIM_COLUMNS}",
            (now, now, *seqs),
        ).fetchall()
        rows.sort(key=lambda r: rank[r[0]])
        self.conn.executemany(
            "INSERT INTO runs (job_seq, run, started_at, due_at, outcome, owner) "
            "VALUES (?, ?, ?, ?, 'running', ?)",
            [(r[0], r[7], now, r[10], owner) for r in rows],
        )
        claimed = []
        for row in rows:
            cwd, environ = self._environment(row[8])
            claimed.append(claimed_job(row, cwd, environ, prior_states[row[0]]))
        return claimed

    # -- counts and the DLQ ----------------------------------------------

    def count_by_state(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT state, n FROM job_counts").fetchall())

    def retry_dead_jobs(
        self,
        job_id: str | None,
        now: float,
        queue: str | None = None,
        since: float | None = None,
    ) -> list[str]:
        # OR IGNORE: a dead job whose unique key a live job holds now stays dead (and
        # listed); retrying it by id says why.
        sql = (
            "UPDATE OR IGNORE jobs SET state = 'pending', attempts = 0, run_at = ?, "
            "updated_at = ?, finished_at = NULL WHERE state = 'dead'"
        )
        params: list = [now, now]
        for clause, value in (
            ("id = ?", job_id),
            ("queue = ?", queue),
            ("finished_at >= ?", since),
        ):
            if value is not None:
                sql += f" AND {clause}"
                params.append(value)
        ids = [r[0] for r in self.conn.execute(sql + " RETURNING id", params).fetchall()]
        if job_id is not None and not ids:
            row = self.conn.execute(
                "SELECT state, unique_key FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                raise rules.no_job(job_id)
            raise rules.dlq_retry_refused(job_id, *row)
        return ids

    # -- deleting --------------------------------------------------------

    def _delete_jobs(self, seqs: list[int]) -> list[str]:
        """Delete jobs with their runs and unused environments; return their log paths."""
        logs: list[str] = []
        for start in range(0, len(seqs), DELETE_CHUNK):
            chunk = seqs[start : start + DELETE_CHUNK]
            marks = ",".join("?" * len(chunk))
            logs += [
                r[0]
                for r in self.conn.execute(
                    f"SELECT log_path FROM runs WHERE job_seq IN ({marks}) "
                    "AND log_path IS NOT NULL",
                    chunk,
                )
            ]
            envs = [
                r[0]
                for r in self.conn.execute(
                    f"SELECT DISTINCT env_id FROM jobs WHERE seq IN ({marks})", chunk
                )
            ]
            self.conn.execute(f"DELETE FROM runs WHERE job_seq IN ({marks})", chunk)
            self.conn.execute(f"DELETE FROM job_deps WHERE job_seq IN ({marks})", chunk)
            self.conn.execute(f"DELETE FROM job_deps WHERE dep_seq IN ({marks})", chunk)
            self.conn.execute(f"DELETE FROM jobs WHERE seq IN ({marks})", chunk)
            for env_id in envs:
                unused = self.conn.execute(
                    "DELETE FROM environments WHERE id = ? "
                    "AND NOT EXISTS (SELECT 1 FROM jobs WHERE env_id = ?) "
                    "AND NOT EXISTS (SELECT 1 FROM schedules WHERE env_id = ?)",
                    (env_id, env_id, env_id),
                ).rowcount
                if unused:
                    self._env_ids.clear()
                    self._envs.pop(env_id, None)
        return logs


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, current = [], []
    for line in script.splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s.strip().strip(";").strip()]
