"""Wake-ups of a daemon on a shared store while it cannot listen (engine/wakeups.py):
it polls for due jobs and cancels, and follows rule changes by the store's count."""

from __future__ import annotations

import asyncio

from queuectld.engine.wakeups import Wakeups


class Unreachable:
    """A listener that never subscribes: it reports the connection lost at start."""

    def __init__(self, report):
        self.report = report

    def start(self) -> None:
        self.report("down", "connection refused")

    def stop(self) -> None:
        pass


def test_a_polling_daemon_follows_rule_changes_by_the_stores_count():
    version = 0
    followed: list[str | None] = []
    kicks: list[None] = []

    async def rules_version() -> int:
        return version

    async def scenario() -> None:
        nonlocal version
        loop = asyncio.get_running_loop()
        wakeups = Wakeups(
            loop,
            lambda: kicks.append(None),
            Unreachable,
            poll_seconds=0.01,
            rules_changed=followed.append,
            rules_version=rules_version,
        )
        wakeups.start()
        await asyncio.sleep(0.1)
        assert wakeups.mode == "polling" and kicks and followed == []
        version = 1  # another daemon changed a setting; its NOTIFY went unheard here
        await asyncio.sleep(0.1)
        assert followed == [None]  # read again once, not at every poll
        wakeups.stop()

    asyncio.run(scenario())
