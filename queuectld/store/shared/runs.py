"""Runs and the daemons that own them: the fence every transition of a run passes.

A run still `running` belongs to a job that is `processing` in that run (claims
and rescues change both in one transaction), so guarding the run row guards the
job too; the job's update repeats it to be sure. A rejected result is kept in the
run's `late_result`, never written over a newer attempt.
"""

from __future__ import annotations

from protocol.messages import TERMINAL_STATES
from queuectld.store import rules
from queuectld.store.base import (
    DaemonRecord,
    Finished,
    FleetFigures,
    RunningAttempt,
    Transition,
)
from queuectld.store.rows import RUNNING_ATTEMPTS, late_result_column
from queuectld.store.shared.statements import Statements


class RunsMixin:
    sql: Statements
    # The fence's owner test, NULL matching NULL (the ownerless runs of an upgraded store).
    OWNER_IS = "owner IS ?"

    def record_run_process(
        self, seq: int, run: int, worker: int, pid: int, pid_started: float, started: float
    ) -> None:
        self.sql.rowcount(
            "UPDATE runs SET worker = ?, pid = ?, pid_started = ?, started_at = ? "
            "WHERE job_seq = ? AND run = ?",
            (worker, pid, pid_started, started, seq, run),
        )
        self.sql.rowcount(
            "UPDATE jobs SET started_at = ? WHERE seq = ? AND runs = ?", (started, seq, run)
        )

    def release_claims(self, claims: list[tuple[int, int, str]], owner: str, now: float) -> None:
        for seq, run, prior_state in claims:
            forgotten = self.sql.rowcount(
                "DELETE FROM runs WHERE job_seq = ? AND run = ? AND outcome = 'running' "
                f"AND {self.OWNER_IS}",
                (seq, run, owner),
            )
            if not forgotten:
                continue
            # The job's start time goes back to its previous run's (none: NULL).
            self.sql.rowcount(
                "UPDATE jobs SET state = ?, runs = runs - 1, updated_at = ?, started_at = "
                "(SELECT r.started_at FROM runs r WHERE r.job_seq = ? AND r.run = ?) "
                "WHERE seq = ? AND runs = ? AND state = 'processing'",
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
        # Another daemon finishing the same run at once waits for the row (or, in
        # SQLite, for the write lock), then finds it closed.
        closed = self.sql.rowcount(
            "UPDATE runs SET finished_at = ?, outcome = ?, exit_code = ?, signal = ?, "
            "error = ?, counted = ?, log_path = ? WHERE job_seq = ? AND run = ? "
            f"AND outcome = 'running' AND {self.OWNER_IS}",
            (
                now, change.outcome, exit_code, signal, change.error, change.counted,
                log_path, seq, run, owner,
            ),
        )  # fmt: skip
        job_id = None
        if closed:
            job_id = self.sql.value(
                "UPDATE jobs SET state = ?, attempts = attempts + ?, updated_at = ?, "
                "run_at = coalesce(?, run_at), finished_at = ?, exit_code = ?, "
                "last_error = ? WHERE seq = ? AND runs = ? AND state = 'processing' "
                "RETURNING id",
                (
                    change.state, int(change.counted), now, change.run_at,
                    now if change.state in TERMINAL_STATES else None, exit_code, change.error,
                    seq, run,
                ),
            )  # fmt: skip
        if job_id is None:
            late = rules.late_result(owner, change, exit_code, signal, now)
            self.sql.rowcount(
                "UPDATE runs SET late_result = ?, log_path = coalesce(log_path, ?) "
                "WHERE job_seq = ? AND run = ?",
                (late_result_column(late), log_path, seq, run),
            )
            return Finished(False)
        if change.state not in TERMINAL_STATES:
            return Finished(True)
        return Finished(True, self.settle_dependents(seq, job_id, change.state, now))

    def running_attempts(self, owner: str) -> list[RunningAttempt]:
        rows = self.sql.all(
            f"{RUNNING_ATTEMPTS} AND (r.owner = ? OR r.owner IS NULL) ORDER BY r.job_seq",
            (owner,),
        )
        return [RunningAttempt(*row) for row in rows]

    def request_cancel(self, job_id: str, now: float) -> str | None:
        return self.sql.value(
            "UPDATE runs SET cancel_requested_at = ? WHERE outcome = 'running' AND "
            "(job_seq, run) IN (SELECT seq, runs FROM jobs WHERE id = ? AND "
            "state = 'processing') RETURNING owner",
            (now, job_id),
        )

    def cancel_requests(self, owner: str) -> list[str]:
        rows = self.sql.all(
            f"{RUNNING_ATTEMPTS} AND r.owner = ? AND r.cancel_requested_at IS NOT NULL "
            "ORDER BY r.job_seq",
            (owner,),
        )
        return [RunningAttempt(*row).id for row in rows]

    # -- daemons ----------------------------------------------------------

    def register_daemon(
        self, daemon_id: str, host: str, pid: int, now: float, fleet: FleetFigures | None = None
    ) -> None:
        self.sql.rowcount(
            "INSERT INTO daemons (id, host, pid, started_at, heartbeat_at, busy, idle, target) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
            "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
            "busy = excluded.busy, idle = excluded.idle, target = excluded.target",
            (daemon_id, host, pid, now, now, *_figures(fleet)),
        )

    def beat(self, daemon_id: str, now: float, fleet: FleetFigures | None = None) -> bool:
        if fleet is None:
            changed = self.sql.rowcount(
                "UPDATE daemons SET heartbeat_at = ? WHERE id = ?", (now, daemon_id)
            )
        else:
            changed = self.sql.rowcount(
                "UPDATE daemons SET heartbeat_at = ?, busy = ?, idle = ?, target = ? WHERE id = ?",
                (now, *_figures(fleet), daemon_id),
            )
        return bool(changed)

    def unregister_daemon(self, daemon_id: str) -> None:
        self.sql.rowcount("DELETE FROM daemons WHERE id = ?", (daemon_id,))

    def daemons(self) -> list[DaemonRecord]:
        rows = self.sql.all(
            "SELECT id, host, pid, started_at, heartbeat_at, busy, idle, target FROM daemons "
            "ORDER BY id"
        )
        return [
            DaemonRecord(*row[:5], None if row[5] is None else FleetFigures(*row[5:]))
            for row in rows
        ]

    def rescue_expired_runs(
        self, rescuer: str, lease: float, now: float, change: Transition
    ) -> list[RunningAttempt]:
        # Owners whose lease ran out, and owners with no registration at all (a
        # daemon that stopped with writes it could not store). Two rescuers at once
        # are kept apart by finish_run's fence: the second finds the runs closed.
        expired = [
            row[0]
            for row in self.sql.all(
                "SELECT id FROM daemons WHERE heartbeat_at < ? AND id <> ? UNION "
                "SELECT DISTINCT owner FROM runs r WHERE outcome = 'running' AND owner <> ? "
                "AND NOT EXISTS (SELECT 1 FROM daemons d WHERE d.id = r.owner) ORDER BY 1",
                (now - lease, rescuer, rescuer),
            )
        ]
        rescued: list[RunningAttempt] = []
        for owner in expired:
            runs = self.sql.all(f"{RUNNING_ATTEMPTS} AND r.owner = ? ORDER BY r.job_seq", (owner,))
            for row in runs:
                attempt = RunningAttempt(*row)
                ended = self.finish_run(
                    attempt.seq, attempt.run, owner=owner, change=change, now=now
                )
                if ended.applied:
                    rescued.append(attempt)
            self.sql.rowcount("DELETE FROM daemons WHERE id = ?", (owner,))
        return rescued


def _figures(fleet: FleetFigures | None) -> tuple[int | None, int | None, int | None]:
    if fleet is None:
        return (None, None, None)
    return (fleet.busy, fleet.idle, fleet.target)
