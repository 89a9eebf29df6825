"""Keeping systemd informed: READY, STATUS, WATCHDOG and STOPPING.

- READY=1 is sent once the store is open and the socket listens, so a unit
  ordered after queuectld.service finds a daemon that answers.
- STATUS= says how deep the queue is and how many workers are busy. It is sent
  when those figures change, at most once a second, never on a timer of its own.
- WATCHDOG=1 is sent every half WATCHDOG_USEC by a timer of the event loop,
  and only after a round trip through the store thread: a wedged loop or a
  wedged store both stop the pings, and systemd restarts the daemon.
- STOPPING=1 is sent as soon as a stop begins (graceful or not).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from queuectld.service.sdnotify import Notifier

log = logging.getLogger("queuectld.service")

STATUS_MIN_INTERVAL = 1.0


def status_line(jobs: dict[str, int], workers: dict[str, int]) -> str:
    return (
        f"{jobs.get('pending', 0)} pending, {jobs.get('failed', 0)} awaiting retry, "
        f"{jobs.get('processing', 0)} running; "
        f"{workers['busy']}/{workers['alive']} workers busy"
    )


class ServiceManager:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        notifier: Notifier,
        figures: Callable[[], Awaitable[tuple[dict, dict]]],
        store_ping: Callable[[], Awaitable[object]],
        watchdog_seconds: float | None = None,
    ):
        """`figures` returns (job counts, worker counts); `store_ping` is a store round trip."""
        self.loop = loop
        self.notifier = notifier
        self.figures = figures
        self.store_ping = store_ping
        self.watchdog_seconds = watchdog_seconds
        self._last_status: str | None = None
        self._last_sent = 0.0
        self._status_pending = False
        self._status_task: asyncio.Task | None = None
        self._watchdog_task: asyncio.Task | None = None
        self.stopping = False

    @property
    def enabled(self) -> bool:
        return self.notifier.enabled

    async def ready(self) -> None:
        if not self.enabled:
            return
        status = await self._current_status()
        self._last_status, self._last_sent = status, time.monotonic()
        self.notifier.ready(status)
        log.debug("told the service manager READY=1 (%s)", status)
        if self.watchdog_seconds:
            log.info("watchdog: pinging every %.3g s", self.watchdog_seconds / 2)
            self._watchdog_task = self.loop.create_task(self._watchdog())

    def changed(self) -> None:
        """Job counts or busy workers may have changed: refresh STATUS soon."""
        if not self.enabled or self.stopping or self._status_pending:
            return
        self._status_pending = True
        delay = max(0.0, self._last_sent + STATUS_MIN_INTERVAL - time.monotonic())
        self.loop.call_later(delay, self._start_status_refresh)

    def _start_status_refresh(self) -> None:
        self._status_task = self.loop.create_task(self._refresh_status())

    async def _refresh_status(self) -> None:
        self._status_pending = False
        if self.stopping:
            return
        try:
            status = await self._current_status()
        except Exception as exc:  # the store is briefly unavailable: try with the next change
            log.debug("no STATUS update: %s", exc)
            return
        if status != self._last_status and not self.stopping:
            self._last_status, self._last_sent = status, time.monotonic()
            self.notifier.status(status)

    async def _current_status(self) -> str:
        jobs, workers = await self.figures()
        return status_line(jobs, workers)

    async def _watchdog(self) -> None:
        assert self.watchdog_seconds
        period = self.watchdog_seconds / 2
        while True:
            await asyncio.sleep(period)
            try:
                await asyncio.wait_for(self.store_ping(), period)
            except asyncio.TimeoutError:
                log.warning("watchdog: the store did not answer within %.3g s; not pinging", period)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("watchdog: store check failed (%s); not pinging", exc)
                continue
            self.notifier.watchdog()

    def begin_stop(self, how: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.notifier.stopping(f"stopping: {how}")

    def close(self) -> None:
        for task in (self._watchdog_task, self._status_task):
            if task is not None:
                task.cancel()
        self.notifier.close()
