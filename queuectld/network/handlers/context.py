"""What a handler may use: the daemon's parts, passed explicitly.

Handlers get this instead of the daemon object, so that none of them can reach
into another part's fields, and so that nothing but `main.py` imports
`daemon.py`. What changes while the daemon runs (whether it is stopping, where
it listens) is read through a callable, at the moment the handler needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from queuectld.config import Config
from queuectld.engine.dispatcher import Dispatcher
from queuectld.engine.events import JobEvents
from queuectld.engine.hooks import Hooks
from queuectld.engine.retention import Retention
from queuectld.engine.schedules import Scheduler
from queuectld.fleet.supervisor import Supervisor
from queuectld.store.runner import StoreRunner
from queuectld.telemetry.counters import Telemetry


@dataclass(frozen=True)
class HandlerContext:
    runner: StoreRunner
    dispatcher: Dispatcher
    supervisor: Supervisor
    scheduler: Scheduler
    config: Config
    events: JobEvents
    telemetry: Telemetry
    hooks: Hooks
    retention: Retention
    home: Path
    daemon_id: str  # this daemon's id in the store (engine/lease.py)
    store: str  # the store's location, without its password
    shared_store: bool  # other daemons may run this store's jobs (PostgreSQL)
    started_at: float
    allow_root: bool  # jobs from TCP clients may run as root
    request_stop: Callable[..., None]  # request_stop(now=False)
    is_stopping: Callable[[], bool]
    # {"socket": path, "socket_activated": bool, "metrics": "host:port" or None,
    #  "wakeups": "local", "notify" or "polling"}
    listening: Callable[[], dict]
