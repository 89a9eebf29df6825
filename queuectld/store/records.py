"""Rows to the job and run records of the protocol (ISO 8601 UTC timestamps)."""

from __future__ import annotations

import json

from protocol.times import to_iso
from queuectld.fleet.procutil import signal_name


def job_record(row: tuple) -> dict:
    (
        seq,
        job_id,
        command,
        state,
        queue,
        priority,
        attempts,
        max_retries,
        timeout,
        runs,
        created_at,
        updated_at,
        run_at,
        started_at,
        finished_at,
        exit_code,
        last_error,
        unique_key,
        after,
        blocked,
    ) = row
    return {
        "id": job_id,
        "command": command,
        "state": state,
        "attempts": attempts,
        "max_retries": max_retries,
        "priority": priority,
        "queue": queue,
        "timeout": timeout,
        "runs": runs,
        "created_at": to_iso(created_at),
        "updated_at": to_iso(updated_at),
        "run_at": to_iso(run_at),
        "started_at": to_iso(started_at),
        "finished_at": to_iso(finished_at),
        "exit_code": exit_code,
        "last_error": last_error,
        "unique_key": unique_key,
        "after": json.loads(after) if after else [],
        "dependencies_left": blocked,
    }


def run_record(row: tuple) -> dict:
    (
        run,
        worker,
        pid,
        started_at,
        finished_at,
        outcome,
        exit_code,
        signal,
        error,
        counted,
        log_path,
        late_result,
    ) = row
    record = {
        "run": run,
        "worker": worker,
        "pid": pid,
        "started_at": to_iso(started_at),
        "finished_at": to_iso(finished_at),
        "outcome": outcome,
        "exit_code": exit_code,
        "signal": signal_name(signal) if signal is not None else None,
        "error": error,
        "counted": bool(counted),
        "log": log_path,
    }
    if late_result is not None:
        # Only a run taken from a daemon that lost its lease has one (see finish_run).
        record["late_result"] = json.loads(late_result)
    return record
