"""The shared backend: one PostgreSQL database that several daemons, on several
hosts, use at once.

Each daemon has one connection, driven by its store thread (`runner.py`): a
transaction per batch, a savepoint per call, in READ COMMITTED. What keeps the
daemons apart is in the statements: claims lock the rows they take and skip
the rows others hold (`queues.py`), unique keys and ids are enforced by indexes,
and every transition of a run is fenced by its run number and its owner.
Durability is the server's: the session sets `synchronous_commit = on`, so a
commit returns once PostgreSQL has it on disk.
"""

from __future__ import annotations

import psycopg

from protocol.messages import JOB_STATES
from queuectld.store.base import Store
from queuectld.store.postgres.admin import ControlMixin
from queuectld.store.postgres.connection import Database, Portable, unavailable
from queuectld.store.postgres.notices import CANCEL_CHANNEL, CHANNEL, RULES_CHANNEL, DueNotices
from queuectld.store.postgres.queues import QueueMixin
from queuectld.store.postgres.schema import (
    HOUSEKEEPING_LOCK,
    LOCK_SPACE,
    SCHEDULES_LOCK,
    migrate,
)
from queuectld.store.postgres.views import STATS_SQL
from queuectld.store.rows import pack_environment, unpack_environment
from queuectld.store.shared.jobs import JobsMixin
from queuectld.store.shared.runs import RunsMixin
from queuectld.store.shared.settings import SettingsMixin
from queuectld.store.shared.stats import StatsMixin

RULES_VERSION_KEY = "rules_version"  # in meta: see rules_version
ENV_CACHE_SIZE = 64  # packed environments remembered by their items; each holds a few kB
DELETE_CHUNK = 1000  # jobs deleted per statement


class PostgresStore(
    DueNotices,
    ControlMixin,
    QueueMixin,
    StatsMixin,
    RunsMixin,
    JobsMixin,
    SettingsMixin,
    Store,
):
    STATS_SQL = STATS_SQL
    OWNER_IS = "owner IS NOT DISTINCT FROM ?"
    NO_LIMIT = "LIMIT ALL"

    def __init__(self, url: str):
        self.db = Database(url)
        self.sql = Portable(self.db)
        try:
            migrate(self.db)
        except BaseException:
            self.db.close()
            raise
        self._packed: dict[tuple, tuple[bytes, bytes]] = {}  # (cwd, items) -> (digest, blob)
        # Environment rows this transaction looked up, and so holds: their ids.
        self._env_ids: dict[bytes, int] = {}
        self._envs: dict[int, tuple[str, dict[str, str]]] = {}  # rows never change

    @property
    def location(self) -> str:
        """The database, without its password."""
        return self.db.location

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    # -- transactions ----------------------------------------------------

    def begin(self) -> None:
        self._env_ids.clear()
        try:
            self.db.reconnect_if_lost()
            self.db.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        except psycopg.Error as exc:
            raise unavailable(exc) from None

    def commit(self) -> None:
        self._env_ids.clear()
        # Delivered to the listeners only if, and when, the commit succeeds.
        if self.jobs_became_due:
            self.db.execute(f"NOTIFY {CHANNEL}")
            self.jobs_became_due = False
        if self.cancel_requested:
            self.db.execute(f"NOTIFY {CANCEL_CHANNEL}")
            self.cancel_requested = False
        if self.rules_changed_by is not None:
            # Counted too, for the daemons that are polling and so hear no NOTIFY.
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES (%s, '1') ON CONFLICT (key) "
                "DO UPDATE SET value = (meta.value::bigint + 1)::text",
                (RULES_VERSION_KEY,),
            )
            self.db.execute("SELECT pg_notify(%s, %s)", (RULES_CHANNEL, self.rules_changed_by))
            self.rules_changed_by = None
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        self._env_ids.clear()
        self.jobs_became_due = self.cancel_requested = False
        self.rules_changed_by = None
        if not self.db.conn.closed and self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def lead_housekeeping(self) -> bool:
        # A session lock: the database lets it go when this daemon's connection
        # ends (a crash, a kill, keepalives giving up on a cut), and the next daemon
        # to ask takes the lead; a daemon that reconnected asks again. Looked up
        # before it is taken, since each pg_try_advisory_lock by its holder stacks.
        row = self.db.execute(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
            "AND pid = pg_backend_pid() AND classid = %s::oid AND objid = %s::oid "
            "AND objsubid = 2) THEN true ELSE pg_try_advisory_lock(%s, %s) END",
            (LOCK_SPACE, HOUSEKEEPING_LOCK, LOCK_SPACE, HOUSEKEEPING_LOCK),
        ).fetchone()
        return bool(row[0])

    def rules_version(self) -> int:
        value = self.db.value("SELECT value FROM meta WHERE key = %s", (RULES_VERSION_KEY,))
        return int(value or 0)

    def lease_clock(self) -> float:
        # The server's clock, read when the statement runs (not when the
        # transaction began): a batch may have waited on a lock for seconds.
        return float(self.db.value("SELECT EXTRACT(EPOCH FROM clock_timestamp())"))

    def lock_schedules(self) -> bool:
        # Held to the end of the transaction: the next daemon's pass then reads the
        # schedules as this one left them, fired through and all. Tried, not
        # waited for: this transaction may hold a queue's claim lock that the
        # holder's batch waits for next.
        row = self.db.execute(
            "SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_SPACE, SCHEDULES_LOCK)
        ).fetchone()
        return bool(row[0])

    def savepoint(self) -> None:
        self.db.execute("SAVEPOINT call")

    def release(self) -> None:
        self.db.execute("RELEASE SAVEPOINT call")

    def rollback_savepoint(self) -> None:
        self._env_ids.clear()  # may name rows, or locks, that the rollback undid
        if self.db.in_transaction:
            self.db.execute("ROLLBACK TO SAVEPOINT call")
            self.db.execute("RELEASE SAVEPOINT call")

    def close(self) -> None:
        self.db.close()

    # -- environments ----------------------------------------------------

    def _environment_id(self, cwd: str, environ: dict[str, str]) -> int:
        """Store each distinct (cwd, environment) once; jobs refer to it by id.

        An id is remembered for one transaction only: another daemon's purge may
        delete an environment no job uses any more, unless this transaction holds
        the row (KEY SHARE, until it ends).
        """
        key = (cwd, tuple(environ.items()))
        packed = self._packed.get(key)
        if packed is None:
            if len(self._packed) >= ENV_CACHE_SIZE:
                self._packed.clear()
            packed = self._packed[key] = pack_environment(cwd, environ)
        digest, blob = packed
        env_id = self._env_ids.get(digest)
        if env_id is not None:
            return env_id
        lookup = "SELECT id FROM environments WHERE digest = %s FOR KEY SHARE"
        env_id = self.db.value(lookup, (digest,))
        if env_id is None:
            env_id = self.db.value(
                "INSERT INTO environments (digest, cwd, environ) VALUES (%s, %s, %s) "
                "ON CONFLICT (digest) DO NOTHING RETURNING id",
                (digest, cwd, blob),
            )
        if env_id is None:  # another daemon inserted it meanwhile; it is committed now
            env_id = self.db.value(lookup, (digest,))
        self._env_ids[digest] = env_id
        return env_id

    def _environment(self, env_id: int) -> tuple[str, dict[str, str]]:
        cached = self._envs.get(env_id)
        if cached is None:
            cwd, blob = self.db.one(
                "SELECT cwd, environ FROM environments WHERE id = %s", (env_id,)
            )
            cached = (cwd, unpack_environment(blob))
            if len(self._envs) > 256:
                self._envs.clear()
            self._envs[env_id] = cached
        return cached

    # -- counts ----------------------------------------------------------

    def count_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATES, 0)
        for (_, state), n in self._job_counts().items():
            counts[state] += n
        return counts

    # -- captured output ---------------------------------------------------

    ships_output = True

    def append_output(self, chunks: list[tuple[int, int, int, bytes]]) -> None:
        if chunks:
            self.sql.executemany(
                'INSERT INTO job_output (job_seq, run, "offset", data) VALUES (?, ?, ?, ?) '
                "ON CONFLICT DO NOTHING",
                chunks,
            )

    def read_output(self, seq: int, run: int, offset: int, limit: int) -> bytes:
        rows = self.sql.all(
            'SELECT "offset", data FROM job_output WHERE job_seq = ? AND run = ? '
            'AND "offset" + length(data) > ? AND "offset" < ? ORDER BY "offset"',
            (seq, run, offset, offset + limit),
        )
        return _stitch(rows, offset, limit)

    def output_size(self, seq: int, run: int) -> int:
        rows = self.sql.all(
            'SELECT "offset", length(data) FROM job_output WHERE job_seq = ? AND run = ? '
            'ORDER BY "offset"',
            (seq, run),
        )
        end = 0
        for start, size in rows:
            if start > end:
                break
            end = max(end, start + size)
        return end

    # -- retention and deleting ------------------------------------------

    def prune_finished(
        self, finished_before: float, keep: int, limit: int
    ) -> tuple[int, list[str]]:
        self._fold_job_counts()  # retention runs once a minute: a good time to tidy
        return super().prune_finished(finished_before, keep, limit)

    def _delete_jobs(self, seqs: list[int]) -> list[str]:
        """Delete jobs with their runs and unused environments; return their log paths."""
        logs: list[str] = []
        for start in range(0, len(seqs), DELETE_CHUNK):
            chunk = seqs[start : start + DELETE_CHUNK]
            logs += [
                r[0]
                for r in self.db.all(
                    "SELECT log_path FROM runs WHERE job_seq = ANY(%s) "
                    "AND log_path IS NOT NULL ORDER BY job_seq, run",
                    (chunk,),
                )
            ]
            self.db.execute("DELETE FROM runs WHERE job_seq = ANY(%s)", (chunk,))
            self.db.execute("DELETE FROM job_output WHERE job_seq = ANY(%s)", (chunk,))
            self.db.execute(
                "DELETE FROM job_deps WHERE job_seq = ANY(%s) OR dep_seq = ANY(%s)",
                (chunk, chunk),
            )
            envs = self.db.all(
                "WITH gone AS (DELETE FROM jobs WHERE seq = ANY(%s) RETURNING env_id) "
                "SELECT DISTINCT env_id FROM gone",
                (chunk,),
            )
            self._delete_unused_environments([r[0] for r in envs])
        return logs

    def _delete_unused_environments(self, env_ids: list[int]) -> None:
        """Drop environments no job or schedule uses. One that another transaction is
        about to use is locked by it (KEY SHARE) and skipped; one it used and
        committed meanwhile makes the delete fail, and is kept."""
        for env_id in sorted(set(env_ids)):
            try:
                with self.db.attempt("unused_environment"):
                    self.db.execute(
                        "DELETE FROM environments WHERE id IN (SELECT id FROM environments "
                        "WHERE id = %s FOR UPDATE SKIP LOCKED) "
                        "AND NOT EXISTS (SELECT 1 FROM jobs WHERE env_id = %s) "
                        "AND NOT EXISTS (SELECT 1 FROM schedules WHERE env_id = %s)",
                        (env_id, env_id, env_id),
                    )
            except psycopg.IntegrityError:
                continue


def _stitch(rows: list[tuple[int, bytes]], offset: int, limit: int) -> bytes:
    """The bytes from `offset` of stored pieces in offset order, up to a gap."""
    out = bytearray()
    at = offset
    for start, data in rows:
        if start > at:
            break
        piece = bytes(data)[at - start :]
        out += piece
        at += len(piece)
        if len(out) >= limit:
            break
    return bytes(out[:limit])
