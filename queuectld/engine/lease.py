"""The daemon's identity in the store and the lease it keeps by heartbeat.

A daemon's id is kept in its data home, so that a restarted daemon recognises
the runs (and the leftover processes) of its previous life as its own. It
registers at start, renews its lease every heartbeat (engine/timing.py) and, on each beat,
rescues the runs of daemons whose lease ran out. With SQLite only one daemon
uses a store, so nothing is ever rescued there; the same path serves a store
that several daemons share.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from queuectld.engine.recovery import rescue_expired_runs
from queuectld.engine.timing import LeaseTiming
from queuectld.store import FleetFigures, Store, StoreUnavailable
from queuectld.store.runner import StoreRunner

log = logging.getLogger("queuectld")

ID_FILE = "daemon.id"


def daemon_id(home: Path) -> str:
    """This home's daemon id: read from the home, or made and kept there once."""
    path = home / ID_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    new = secrets.token_hex(8)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(new + "\n")
    os.replace(scratch, path)
    return new


class Lease:
    """Registration, heartbeat and rescue, on a timer of the event loop."""

    def __init__(
        self,
        runner: StoreRunner,
        owner: str,
        on_rescued: Callable[[], None],
        timing: LeaseTiming | None = None,
        fleet: Callable[[], FleetFigures | None] = lambda: None,
    ):
        self.runner = runner
        self.owner = owner
        self.on_rescued = on_rescued
        # Recorded with each beat, so that every daemon's `status` shows this one's workers.
        self.fleet = fleet
        timing = timing or LeaseTiming()
        self.heartbeat = timing.heartbeat
        self.lease = timing.lease
        self._task: asyncio.Task | None = None

    async def register(self) -> None:
        await self.runner.call(
            Store.register_daemon,
            self.owner,
            socket.gethostname(),
            os.getpid(),
            time.time(),
            self.fleet(),
        )

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat_forever())

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self.beat()
            except StoreUnavailable as exc:
                log.warning("heartbeat not stored: %s", exc, extra={"event": "heartbeat_failed"})
            except Exception:
                log.exception("heartbeat failed")

    async def beat(self) -> None:
        """Renew the lease (registering again if it was lost), then rescue."""
        if not await self.runner.call(Store.beat, self.owner, time.time(), self.fleet()):
            log.warning(
                "this daemon's registration was gone from the store; registered again",
                extra={"event": "daemon_reregistered", "daemon": self.owner},
            )
            await self.register()
        if await rescue_expired_runs(self.runner, self.owner, self.lease):
            self.on_rescued()

    async def stop(self) -> None:
        """Stop beating and leave the store (the daemon owns no run any more)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.runner.call(Store.unregister_daemon, self.owner)
