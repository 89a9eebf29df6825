"""The stats op: throughput, success rate and timing per queue, from the runs table."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from queuectld.store import Store

if TYPE_CHECKING:
    from queuectld.daemon import Daemon


async def stats(daemon: Daemon, args: dict) -> dict:
    return await daemon.runner.call(Store.run_stats, time.time(), args.get("queue"))


HANDLERS = {"stats": stats}
