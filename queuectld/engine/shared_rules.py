"""Following rule changes made through the other daemons of a shared store.

A daemon reads its settings, its queues' hooks and the drain flag at start and
keeps them in memory, and arms its scheduler's timer on the schedules it read.
When another daemon changes any of them it announces it (Dispatcher.change_rules,
a NOTIFY on the rules channel), and this daemon reads them all again, through
change_rules too: the jobs it holds ahead go back first, so that nothing claimed
under the old rules starts under the new ones. The claim itself needs no news:
paused and full queues are left out by the claim statement. Per-daemon
settings (config.PER_DAEMON: the fleet size, the kill grace, the bounds on its
clients) stay as this daemon has them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from queuectld.config import PER_DAEMON, Config
from queuectld.engine.dispatcher import Dispatcher
from queuectld.engine.hooks import Hooks
from queuectld.store import Store
from queuectld.store.runner import StoreRunner

log = logging.getLogger("queuectld")


class RuleFollower:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        runner: StoreRunner,
        dispatcher: Dispatcher,
        config: Config,
        hooks: Hooks,
        draining_key: str,
        settings_changed: Callable[[], None] = lambda: None,
    ):
        self.loop = loop
        self.runner = runner
        self.dispatcher = dispatcher
        self.config = config
        self.hooks = hooks
        self.draining_key = draining_key
        # Parts that act on a change only when told (retention, the scheduler).
        self.settings_changed = settings_changed
        self._task: asyncio.Task | None = None
        self._again = False

    def changed(self, sender: str | None) -> None:
        """Called for each announcement; this daemon's own are already applied."""
        if sender is not None and sender == self.dispatcher.owner:
            return
        if self._task is not None:
            self._again = True  # read once more when this reading ends: it may be older
            return
        self._task = self.loop.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _follow(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await self._reread()
                except Exception as exc:  # the store may be away: the next change retries
                    log.warning(
                        "could not re-read the rules another daemon changed: %s",
                        exc,
                        extra={"event": "rules_reload_failed"},
                    )
                if not self._again:
                    return
        finally:
            self._task = None

    async def _reread(self) -> None:
        def read(store: Store) -> tuple[dict[str, str], dict[str, dict]]:
            return store.config_items(), store.queue_settings()

        async def apply() -> None:
            stored, queues = await self.runner.call(read)
            self.config.reload(stored, keep=PER_DAEMON)
            for queue in set(self.hooks.queue_hooks) - queues.keys():
                self.hooks.set_queue_hook(queue, None)
            for queue, settings in queues.items():
                self.hooks.set_queue_hook(queue, settings["on_finish"])
            self.dispatcher.set_draining(stored.get(self.draining_key) == "1")

        # kick() starts nothing while draining, so the kick after it is safe either way.
        await self.dispatcher.change_rules(apply, announce=False)
        self.settings_changed()
        log.debug("re-read the rules another daemon changed", extra={"event": "rules_reloaded"})
