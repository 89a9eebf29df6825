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

from protocol.messages import JOB_STATES, TERMINAL_STATES
from queuectld.store import rules
from queuectld.store.base import (
    Canceled,
    DaemonRecord,
    Finished,
    JobRow,
    RunningAttempt,
    Store,
    Transition,
)
from queuectld.store.postgres.admin import ControlMixin
from queuectld.store.postgres.connection import Database, unavailable
from queuectld.store.postgres.queues import QueueMixin
from queuectld.store.postgres.schedules import ScheduleMixin
from queuectld.store.postgres.schema import migrate
from queuectld.store.postgres.views import PostgresViews
from queuectld.store.rows import (
    JOB_COLUMNS,
    RUN_COLUMNS,
    RUNNING_ATTEMPTS,
    fit_page,
    job_from_row,
    late_result_column,
    pack_environment,
    run_from_row,
    unpack_environment,
)
from queuectld.store.sql import WAITING

ENV_CACHE_SIZE = 64  # packed environments remembered by their items; each holds a few kB
DELETE_CHUNK = 1000  # jobs deleted per statement


class PostgresStore(ControlMixin, QueueMixin, ScheduleMixin, PostgresViews, Store):
    def __init__(self, url: str):
        self.db = Database(url)
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
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        self._env_ids.clear()
        if not self.db.conn.closed and self.db.in_transaction:
            self.db.execute("ROLLBACK")

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

    # -- runs ------------------------------------------------------------

    def record_run_process(
        self, seq: int, run: int, worker: int, pid: int, pid_started: float, started: float
    ) -> None:
        self.db.execute(
            "UPDATE runs SET worker = %s, pid = %s, pid_started = %s, started_at = %s "
            "WHERE job_seq = %s AND run = %s",
            (worker, pid, pid_started, started, seq, run),
        )
        self.db.execute(
            "UPDATE jobs SET started_at = %s WHERE seq = %s AND runs = %s", (started, seq, run)
        )

    def release_claims(self, claims: list[tuple[int, int, str]], owner: str, now: float) -> None:
        for seq, run, prior_state in claims:
            forgotten = self.db.rowcount(
                "DELETE FROM runs WHERE job_seq = %s AND run = %s AND outcome = 'running' "
                "AND owner IS NOT DISTINCT FROM %s",
                (seq, run, owner),
            )
            if not forgotten:
                continue
            # The job's start time goes back to its previous run's (none: NULL).
            self.db.execute(
                "UPDATE jobs SET state = %s, runs = runs - 1, updated_at = %s, started_at = "
                "(SELECT r.started_at FROM runs r WHERE r.job_seq = %s AND r.run = %s) "
                "WHERE seq = %s AND runs = %s AND state = 'processing'",
                (prior_state, now, seq, run - 1, seq, run),
            )

    def finish_run(
        self,
        seq: int,
        run: int,
        *,
        owner: str | None,
        change: Transition,
        now: float,
        exit_code: int | None = None,
        signal: int | None = None,
        log_path: str | None = None,
    ) -> Finished:
        # The fence: a run still `running` belongs to a job that is `processing` in
        # that run (claims and rescues change both in one transaction), so guarding
        # the run row guards the job too; the job's update repeats it to be sure. A
        # second daemon finishing the same run waits for the row, then finds it closed.
        closed = self.db.rowcount(
            "UPDATE runs SET finished_at = %s, outcome = %s, exit_code = %s, signal = %s, "
            "error = %s, counted = %s, log_path = %s WHERE job_seq = %s AND run = %s "
            "AND outcome = 'running' AND owner IS NOT DISTINCT FROM %s",
            (
                now, change.outcome, exit_code, signal, change.error, change.counted,
                log_path, seq, run, owner,
            ),
        )  # fmt: skip
        job_id = None
        if closed:
            job_id = self.db.value(
                "UPDATE jobs SET state = %s, attempts = attempts + %s, updated_at = %s, "
                "run_at = coalesce(%s, run_at), finished_at = %s, exit_code = %s, "
                "last_error = %s WHERE seq = %s AND runs = %s AND state = 'processing' "
                "RETURNING id",
                (
                    change.state, int(change.counted), now, change.run_at,
                    now if change.state in TERMINAL_STATES else None, exit_code, change.error,
                    seq, run,
                ),
            )  # fmt: skip
        if job_id is None:
            late = rules.late_result(owner, change, exit_code, signal, now)
            self.db.execute(
                "UPDATE runs SET late_result = %s, log_path = coalesce(log_path, %s) "
                "WHERE job_seq = %s AND run = %s",
                (late_result_column(late), log_path, seq, run),
            )
            return Finished(False)
        if change.state not in TERMINAL_STATES:
            return Finished(True)
        return Finished(True, self.settle_dependents(seq, job_id, change.state, now))

    def running_attempts(self, owner: str) -> list[RunningAttempt]:
        rows = self.db.all(
            f"{RUNNING_ATTEMPTS} AND (r.owner = %s OR r.owner IS NULL) ORDER BY r.job_seq",
            (owner,),
        )
        return [RunningAttempt(*row) for row in rows]

    # -- daemons ----------------------------------------------------------

    def register_daemon(self, daemon_id: str, host: str, pid: int, now: float) -> None:
        self.db.execute(
            "INSERT INTO daemons (id, host, pid, started_at, heartbeat_at) "
            "VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
            "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
            (daemon_id, host, pid, now, now),
        )

    def beat(self, daemon_id: str, now: float) -> bool:
        return bool(
            self.db.rowcount("UPDATE daemons SET heartbeat_at = %s WHERE id = %s", (now, daemon_id))
        )

    def unregister_daemon(self, daemon_id: str) -> None:
        self.db.execute("DELETE FROM daemons WHERE id = %s", (daemon_id,))

    def daemons(self) -> list[DaemonRecord]:
        rows = self.db.all(
            "SELECT id, host, pid, started_at, heartbeat_at FROM daemons ORDER BY id"
        )
        return [DaemonRecord(*row) for row in rows]

    def rescue_expired_runs(
        self, rescuer: str, lease: float, now: float, change: Transition
    ) -> list[RunningAttempt]:
        # Owners whose lease ran out, and owners with no registration at all (a
        # daemon that stopped with writes it could not store). Two rescuers at once
        # are kept apart by finish_run's fence: the second finds the runs closed.
        expired = [
            row[0]
            for row in self.db.all(
                "SELECT id FROM daemons WHERE heartbeat_at < %s AND id <> %s UNION "
                "SELECT DISTINCT owner FROM runs r WHERE outcome = 'running' AND owner <> %s "
                "AND NOT EXISTS (SELECT 1 FROM daemons d WHERE d.id = r.owner) ORDER BY 1",
                (now - lease, rescuer, rescuer),
            )
        ]
        rescued: list[RunningAttempt] = []
        for owner in expired:
            runs = self.db.all(f"{RUNNING_ATTEMPTS} AND r.owner = %s ORDER BY r.job_seq", (owner,))
            for row in runs:
                attempt = RunningAttempt(*row)
                ended = self.finish_run(
                    attempt.seq, attempt.run, owner=owner, change=change, now=now
                )
                if ended.applied:
                    rescued.append(attempt)
            self.db.execute("DELETE FROM daemons WHERE id = %s", (owner,))
        return rescued

    # -- jobs ------------------------------------------------------------

    def get_job(self, job_id: str, history: bool = True) -> JobRow | None:
        row = self.db.one(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
        if row is None:
            return None
        if not history:
            return job_from_row(row)
        runs = self.db.all(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE job_seq = %s ORDER BY run", (row[0],)
        )
        return job_from_row(row, tuple(run_from_row(r) for r in runs))

    def job_log_path(self, job_id: str, run: int | None) -> tuple[int, int, str, str | None]:
        row = self.db.one("SELECT seq, runs, state FROM jobs WHERE id = %s", (job_id,))
        if row is None:
            raise rules.no_job(job_id)
        seq, runs, state = row
        run = rules.log_run(job_id, state, runs, run)
        path = self.db.one("SELECT log_path FROM runs WHERE job_seq = %s AND run = %s", (seq, run))
        return seq, run, state, path[0] if path else None

    def list_jobs(
        self, state: str | None, queue: str | None, limit: int, after: int | None
    ) -> tuple[list[JobRow], int | None]:
        where, params = ["seq > %s"], [after or 0]
        if state:
            where.append("state = %s")
            params.append(state)
        if queue:
            where.append("queue = %s")
            params.append(queue)
        rows = self.db.all(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY seq LIMIT %s",
            (*params, limit + 1),
        )
        rows, more = fit_page(rows, limit)
        return [job_from_row(r) for r in rows], (rows[-1][0] if more else None)

    def count_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATES, 0)
        for (_, state), n in self._job_counts().items():
            counts[state] += n
        return counts

    def cancel_waiting_job(self, job_id: str, now: float) -> Canceled:
        seq = self.db.value(
            "UPDATE jobs SET state = 'canceled', updated_at = %s, finished_at = %s, "
            f"last_error = 'canceled by user' WHERE id = %s AND state IN {WAITING} "
            "RETURNING seq",
            (now, now, job_id),
        )
        if seq is None:
            self._raise_for_state(job_id, "cancel")
        canceled = self.settle_dependents(seq, job_id, "canceled", now)
        return Canceled(self.get_job(job_id, history=False), canceled)

    def _raise_for_state(self, job_id: str, action: str) -> None:
        state = self.job_state(job_id)
        if state is None:
            raise rules.no_job(job_id)
        raise rules.wrong_state(job_id, action, state)

    def job_state(self, job_id: str) -> str | None:
        return self.db.value("SELECT state FROM jobs WHERE id = %s", (job_id,))

    # -- identity and retention ------------------------------------------

    def instance_id(self) -> str:
        return self.db.value("SELECT value FROM meta WHERE key = 'instance'")

    def prune_finished(
        self, finished_before: float, keep: int, limit: int
    ) -> tuple[int, list[str]]:
        self._fold_job_counts()  # retention runs once a minute: a good time to tidy
        seqs = [
            r[0]
            for r in self.db.all(
                "SELECT seq FROM jobs WHERE state IN ('completed', 'canceled') "
                "AND finished_at < %s ORDER BY finished_at LIMIT %s",
                (finished_before, limit),
            )
        ]
        if keep and len(seqs) < limit:
            # Beyond the newest `keep` finished jobs, oldest first.
            chosen = set(seqs)
            seqs += [
                r[0]
                for r in self.db.all(
                    "SELECT seq FROM jobs WHERE state IN ('completed', 'canceled') "
                    "ORDER BY finished_at DESC OFFSET %s",
                    (keep,),
                )
                if r[0] not in chosen
            ][: limit - len(seqs)]
        return len(seqs), self._delete_jobs(seqs)

    def purge_dead(self, job_id: str | None) -> tuple[list[str], list[str]]:
        if job_id is None:
            rows = self.db.all("SELECT seq, id FROM jobs WHERE state = 'dead' ORDER BY seq")
        else:
            rows = self.db.all(
                "SELECT seq, id FROM jobs WHERE id = %s AND state = 'dead'", (job_id,)
            )
            if not rows:
                self._raise_for_state(job_id, "purge")
        return [r[1] for r in rows], self._delete_jobs([r[0] for r in rows])

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

    # -- settings --------------------------------------------------------

    def config_items(self) -> dict[str, str]:
        return dict(self.db.all("SELECT key, value FROM config"))

    def set_config(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO config (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
