"""Wake-ups from other daemons: jobs they made due start here without polling.

With a store of its own a daemon knows every change that makes a job due (it
made it), so the dispatcher's own kicks and timer are enough. With a shared
store another daemon's enqueue must wake this one: the store's listener
(store/postgres/listen.py) reports each notification, and the dispatcher is
kicked. While there is no subscription (at start, or after the connection to
the database dropped) the dispatcher is kicked every POLL_SECONDS instead; the
daemon says so once in its log, and again when it has subscribed again. A
cancel another daemon asked of one of this daemon's running jobs comes the same
ways. So does a change of what may run made through another daemon (settings,
queues, a drain): `rules_changed` re-reads what this daemon keeps in memory,
and does so too on subscribing again, for changes made while nobody listened;
while polling, the store's count of such changes (`rules_version`) is compared
at each poll, so a change is followed within a poll, not only at resubscribing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger("queuectld")

POLL_SECONDS = 1.0


class Source(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Wakeups:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        kick: Callable[[], None],
        open_source: Callable[[Callable[[str, str | None], None]], Source | None],
        poll_seconds: float = POLL_SECONDS,
        check_cancels: Callable[[], None] = lambda: None,
        rules_changed: Callable[[str | None], None] = lambda sender: None,
        rules_version: Callable[[], Awaitable[int]] | None = None,
    ):
        self.loop = loop
        self.kick = kick
        # Look for cancels other daemons asked of this one's running jobs.
        self.check_cancels = check_cancels
        # Called with the id of the daemon that changed the rules (None: unknown).
        self.rules_changed = rules_changed
        # Read while polling: a change of the rules announced meanwhile raises it.
        self.rules_version = rules_version
        self._rules_seen: int | None = None
        self.poll_seconds = poll_seconds
        self.source = open_source(self._report)
        self._poll_task: asyncio.Task | None = None
        self._lost_logged = False  # one warning per outage, not one per retry

    @property
    def mode(self) -> str:
        """`local` (a store of its own), `notify` (subscribed) or `polling`."""
        if self.source is None:
            return "local"
        return "polling" if self._poll_task is not None else "notify"

    def start(self) -> None:
        if self.source is None:
            return
        self._start_polling()
        self.source.start()

    def stop(self) -> None:
        if self.source is not None:
            self.source.stop()
        self._stop_polling()

    def _report(self, kind: str, reason: str | None) -> None:
        """Called from the listener's thread."""
        try:
            self.loop.call_soon_threadsafe(self._on, kind, reason)
        except RuntimeError:  # the loop is closed: the daemon is stopping
            pass

    def _on(self, kind: str, reason: str | None) -> None:
        if kind == "due":
            self.kick()
        elif kind == "cancel":
            self.check_cancels()
        elif kind == "rules":
            self.rules_changed(reason)
        elif kind == "up":
            self._stop_polling()
            if self._lost_logged:
                self._lost_logged = False
                self.rules_changed(None)
                log.info(
                    "listening for other daemons' wake-ups again",
                    extra={"event": "wakeups_resumed"},
                )
            self.kick()  # what became due, or was asked, while nobody listened
            self.check_cancels()
        elif kind == "down":
            self._start_polling()
            if not self._lost_logged:
                self._lost_logged = True
                log.warning(
                    "cannot listen for other daemons' wake-ups (%s): looking for due jobs "
                    "every %g s until it can",
                    reason,
                    self.poll_seconds,
                    extra={"event": "wakeups_lost", "reason": reason},
                )

    def _start_polling(self) -> None:
        if self._poll_task is None:
            self._poll_task = self.loop.create_task(self._poll())

    def _stop_polling(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            self.kick()
            self.check_cancels()
            if self.rules_version is not None:
                await self._compare_rules_version()

    async def _compare_rules_version(self) -> None:
        try:
            version = await self.rules_version()
        except Exception:  # the store is away too: the next poll asks again
            return
        if self._rules_seen is not None and version != self._rules_seen:
            self.rules_changed(None)
        self._rules_seen = version
