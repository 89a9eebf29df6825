"""The daemon's identity in the store and the lease it keeps by heartbeat.

A daemon's id is kept in its data home, so that a restarted daemon recognises
the runs (and the leftover processes) of its previous life as its own. It
registers at start, renews its lease every heartbeat (engine/timing.py) and, on each beat,
rescues the runs of daemons whose lease ran out. With SQLite only one daemon
uses a store, so nothing is ever rescued there; the same path serves a store
that several daemons share. On such a store a daemon that cannot renew its
lease for two thirds of it fences itself (see Lease._watch_renewals).
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
from typing import Protocol

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


# Heartbeats are stamped with the store's clock (Store.lease_clock), which is the
# one every daemon's rescue compares them with.
def _register(store: Store, owner: str, host: str, pid: int, fleet: FleetFigures | None) -> None:
    store.register_daemon(owner, host, pid, store.lease_clock(), fleet)


def _beat(store: Store, owner: str, fleet: FleetFigures | None) -> bool:
    return store.beat(owner, store.lease_clock(), fleet)


class Fencing(Protocol):
    """What a daemon on a shared store does when its lease may be lost, and after."""

    def fence(self) -> None: ...
    def lift(self) -> None: ...


class Lease:
    """Registration, heartbeat and rescue, on a timer of the event loop."""

    def __init__(
        self,
        runner: StoreRunner,
        owner: str,
        on_rescued: Callable[[], None],
        timing: LeaseTiming | None = None,
        fleet: Callable[[], FleetFigures | None] = lambda: None,
        fencing: Fencing | None = None,
    ):
        self.runner = runner
        self.owner = owner
        self.on_rescued = on_rescued
        # Recorded with each beat, so that every daemon's `status` shows this one's workers.
        self.fleet = fleet
        timing = timing or LeaseTiming()
        self.heartbeat = timing.heartbeat
        self.lease = timing.lease
        self.fence_after = timing.fence_after
        self.fencing = fencing
        self.fenced = False
        # When the last renewal that was stored had been sent (monotonic clock).
        self._renewed = time.monotonic()
        self._tasks: list[asyncio.Task] = []

    async def register(self) -> None:
        sent = time.monotonic()
        await self.runner.call(
            _register, self.owner, socket.gethostname(), os.getpid(), self.fleet()
        )
        self._renewed = max(self._renewed, sent)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._beat_forever()))
        if self.fencing is not None:
            self._tasks.append(loop.create_task(self._watch_renewals()))

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
        sent = time.monotonic()
        if not await self.runner.call(_beat, self.owner, self.fleet()):
            log.warning(
                "this daemon's registration was gone from the store; registered again",
                extra={"event": "daemon_reregistered", "daemon": self.owner},
            )
            await self.register()
        self._renewed = max(self._renewed, sent)
        # A renewal that took most of the lease to be stored leaves too little of it
        # to start jobs under: stay fenced until a prompt one.
        if self.fenced and time.monotonic() - self._renewed <= self.fence_after:
            self.fenced = False
            log.warning(
                "lease renewed again: starting jobs again",
                extra={"event": "lease_renewed", "daemon": self.owner},
            )
            if self.fencing is not None:
                self.fencing.lift()
        if await rescue_expired_runs(self.runner, self.owner, self.lease):
            self.on_rescued()

    async def _watch_renewals(self) -> None:
        """Fence this daemon once its lease has gone unrenewed for fence_after seconds.

        Timed on the event loop, apart from the beats: a beat may be stuck in a
        store call that waits for an unreachable database, and the other daemons
        presume this one dead after `lease` seconds whatever it is doing.
        """
        while True:
            await asyncio.sleep(self.fence_after / 10)  # cheap: no store call
            silent = time.monotonic() - self._renewed
            if self.fenced or silent <= self.fence_after or self.fencing is None:
                continue
            self.fenced = True
            log.error(
                "lease not renewed for %.1f s: running jobs killed and none started until "
                "it is, so that no other daemon runs them at the same time",
                silent,
                extra={"event": "lease_fenced", "daemon": self.owner, "silent": silent},
            )
            self.fencing.fence()

    async def stop(self) -> None:
        """Stop beating and leave the store (the daemon owns no run any more)."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        await self.runner.call(Store.unregister_daemon, self.owner)
