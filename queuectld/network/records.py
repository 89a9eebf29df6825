"""Stored jobs, runs and daemons to the records of the protocol (PROTOCOL.md 6.8, 6.9,
8.4): timestamps become ISO 8601 UTC, signals their names."""

from __future__ import annotations

from protocol.times import to_iso
from queuectld.fleet.procutil import signal_name
from queuectld.store import DaemonRecord, FleetFigures, JobRow, RunRow


def job_record(job: JobRow) -> dict:
    record = {
        "id": job.id,
        "command": job.command,
        "state": job.state,
        "attempts": job.attempts,
        "max_retries": job.max_retries,
        "priority": job.priority,
        "queue": job.queue,
        "timeout": job.timeout,
        "runs": job.runs,
        "created_at": to_iso(job.created_at),
        "updated_at": to_iso(job.updated_at),
        "run_at": to_iso(job.run_at),
        "started_at": to_iso(job.started_at),
        "finished_at": to_iso(job.finished_at),
        "exit_code": job.exit_code,
        "last_error": job.last_error,
        "unique_key": job.unique_key,
        "after": list(job.after),
        "dependencies_left": job.dependencies_left,
    }
    if job.history is not None:
        record["cwd"] = job.cwd
        record["env"] = job.env
        record["history"] = [run_record(run) for run in job.history]
    return record


def run_record(run: RunRow) -> dict:
    record = {
        "run": run.run,
        "worker": run.worker,
        "pid": run.pid,
        "started_at": to_iso(run.started_at),
        "finished_at": to_iso(run.finished_at),
        "outcome": run.outcome,
        "exit_code": run.exit_code,
        "signal": signal_name(run.signal) if run.signal is not None else None,
        "error": run.error,
        "counted": run.counted,
        "log": run.log_path,
        "daemon": run.owner,
        "host": run.host,
    }
    if run.late_result is not None:
        # Only a run taken from a daemon that lost its lease has one (see finish_run).
        record["late_result"] = run.late_result
    return record


def waiting_record(job: JobRow) -> dict:
    """The short form `status` gives of the next jobs due."""
    return {
        "id": job.id,
        "command": job.command,
        "queue": job.queue,
        "priority": job.priority,
        "state": job.state,
        "run_at": to_iso(job.run_at),
        "attempts": job.attempts,
    }


def daemon_records(daemons: list[DaemonRecord], own_id: str, own_fleet: FleetFigures) -> list[dict]:
    """Every daemon of the store, as `status` lists them. Another daemon's workers are
    as its last heartbeat recorded them; this daemon's are the live figures."""
    records = []
    for daemon in daemons:
        fleet = own_fleet if daemon.id == own_id else daemon.workers
        records.append(
            {
                "id": daemon.id,
                "host": daemon.host,
                "pid": daemon.pid,
                "started_at": to_iso(daemon.started_at),
                "heartbeat_at": to_iso(daemon.heartbeat_at),
                "workers": None
                if fleet is None
                else {"busy": fleet.busy, "idle": fleet.idle, "target": fleet.target},
            }
        )
    return records
