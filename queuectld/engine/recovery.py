"""Runs that outlived their daemon: recovered at start-up, or rescued from a daemon
whose lease expired.

Both end the run through the fenced `finish_run` with the state machine's
interruption (`engine/outcome.py`): the job goes back to pending, not counted.
Only start-up recovery kills leftover processes: they can only be on this host,
and only the runs of this daemon (and the ownerless runs of an upgraded store)
are its to look for.
"""

from __future__ import annotations

import asyncio
import logging
import time

from queuectld.engine.outcome import Stop, interrupted
from queuectld.fleet.survivors import kill_run, run_marker
from queuectld.store import Store, Transition
from queuectld.store.base import RunningAttempt
from queuectld.store.runner import StoreRunner

log = logging.getLogger("queuectld")


async def recover_own_runs(runner: StoreRunner, owner: str) -> int:
    """End and requeue the runs this daemon's previous life left; returns how many."""
    orphans = await runner.call(Store.running_attempts, owner)
    legacy_marker = None
    loop = asyncio.get_running_loop()
    for orphan in orphans:
        if orphan.owner is None and legacy_marker is None:
            legacy_marker = await runner.call(Store.instance_id)
        # Its worker should have killed it when the daemon died; if the worker
        # died too, the job is still running. Kill it (never a reused pid:
        # see survivors.py) before it is requeued, so it cannot run twice.
        marker = run_marker(orphan.owner or legacy_marker, orphan.seq, orphan.run)
        killed = await loop.run_in_executor(
            None, kill_run, marker, orphan.pid, orphan.pid_started, orphan.started_at, 5.0
        )
        if killed:
            log.warning(
                "killed %d process(es) of job %s left running by a previous daemon: %s",
                len(killed),
                orphan.id,
                " ".join(map(str, killed)),
                extra={"event": "orphan_killed", "job": orphan.id, "pids": killed},
            )
        now = time.time()
        await runner.call(
            Store.finish_run,
            orphan.seq,
            orphan.run,
            owner=orphan.owner,
            change=interrupted(Stop.DAEMON_STOPPED, now),
            now=now,
        )
    if orphans:
        log.warning(
            "requeued %d job(s) interrupted by a previous daemon",
            len(orphans),
            extra={"event": "jobs_recovered", "count": len(orphans)},
        )
    return len(orphans)


async def rescue_expired_runs(runner: StoreRunner, rescuer: str, lease: float) -> int:
    """Requeue the runs of daemons whose lease expired; returns how many."""
    # Expiry is judged on the store's clock, the one heartbeats are stamped with;
    # the retry's backoff is counted on this host's, like every other run_at.
    change = interrupted(Stop.DAEMON_LOST, time.time())
    rescued = await runner.call(_rescue, rescuer, lease, change)
    for attempt in rescued:
        log.warning(
            "job %s run %d requeued: its daemon %s lost its lease",
            attempt.id,
            attempt.run,
            attempt.owner,
            extra={"event": "run_rescued", "job": attempt.id, "owner": attempt.owner},
        )
    return len(rescued)


def _rescue(store: Store, rescuer: str, lease: float, change: Transition) -> list[RunningAttempt]:
    return store.rescue_expired_runs(rescuer, lease, store.lease_clock(), change)
