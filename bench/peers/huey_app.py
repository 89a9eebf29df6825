"""The huey application of the huey peer: SQLite storage, one shell-command task.

The consumer imports this module as `bench.peers.huey_app.huey`; the suite
names the database file in BENCH_HUEY_DB before either side imports it.
"""

from __future__ import annotations

import os

from huey import SqliteHuey

from bench.peers.tasks import run_shell

huey = SqliteHuey(
    "queuectl-bench",
    filename=os.environ.get("BENCH_HUEY_DB", "huey-bench.db"),
    # The suite's own connection fills the backlog before the clock starts, so it
    # skips fsync; the consumer keeps huey's default (SQLite's FULL).
    fsync=False if os.environ.get("BENCH_HUEY_UNTIMED_FILL") else None,
)
shell = huey.task()(run_shell)
