"""Pruning finished jobs, so the store and the logs do not grow forever.

Completed and canceled jobs go once they are older than `retention-age` or
beyond the newest `retention-count`; their runs and log files go with them.
Dead jobs (the DLQ) are never pruned: they wait for `dlq retry` or `dlq purge`.
Pruning runs at start, every PRUNE_INTERVAL, and when a retention setting
changes, in chunks so that other requests get the store in between. Of the
daemons sharing a store only one prunes, the one holding the lead
(Store.lead_housekeeping); the others ask again at each pass, so when it goes
away another takes over within PRUNE_INTERVAL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from queuectld.config import Config
from queuectld.store import Store
from queuectld.store.runner import StoreRunner

log = logging.getLogger("queuectld.retention")

PRUNE_INTERVAL = 60.0
CHUNK = 1000


class Retention:
    def __init__(self, runner: StoreRunner, config: Config, shared: bool = False):
        self.runner = runner
        self.config = config
        self.pruned = 0
        # A store shared with other daemons, of which this one prunes (leading).
        self.shared = shared
        self.leading = False
        self._kicked = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def kick(self) -> None:
        self._kicked.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.prune_now()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may be locked or full: try again later
                log.warning("pruning finished jobs failed: %s", exc)
            self._kicked.clear()
            try:
                await asyncio.wait_for(self._kicked.wait(), PRUNE_INTERVAL)
            except asyncio.TimeoutError:
                pass

    async def prune_now(self) -> int:
        config = self.config
        loop = asyncio.get_running_loop()
        total = 0
        if not config["retention-age"] and not config["retention-count"]:
            return total
        leading = await self.runner.call(Store.lead_housekeeping)
        if self.shared and leading != self.leading:
            self.leading = leading
            log.info(
                "%s pruning for the daemons of this store",
                "taking over" if leading else "leaving",
                extra={"event": "housekeeping_lead", "leading": leading},
            )
        if not leading:
            return total
        while True:
            age, keep = config["retention-age"], config["retention-count"]
            if not age and not keep:
                return total
            before = time.time() - age if age else 0.0
            count, logs = await self.runner.call(Store.prune_finished, before, keep, CHUNK)
            if logs:
                await loop.run_in_executor(None, remove_files, logs)
            total += count
            if count < CHUNK:
                break
        if total:
            self.pruned += total
            log.info("pruned %d finished job(s)", total)
        return total


def remove_files(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass
