"""Listening for the other daemons' NOTIFY on a connection of its own, in a thread.

The store's connection belongs to the store thread and is inside a transaction
most of the time, and a notification is only read between statements; so
listening gets its own connection, blocked in `notifies()` in a thread of its
own. The thread reports five things, each through `report` (called from the
thread; the caller moves it to its loop): `"up"` once it is subscribed, `"due"`
when jobs became due, `"cancel"` when a cancel was asked of some daemon's running
job, `"rules"` with the sender's id when a daemon changed what may run, and
`"down"` with the reason when the connection is lost
(it then subscribes again, once a second, until it succeeds). Keepalives on the
connection (connection.py) turn a half-open connection into a lost one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg

from queuectld.store.base import StoreUnavailable
from queuectld.store.postgres.connection import Database
from queuectld.store.postgres.notices import CANCEL_CHANNEL, CHANNEL, RULES_CHANNEL

APPLICATION_NAME = "queuectld-listen"
RETRY_SECONDS = 1.0
# How long one wait for notifications lasts: the longest a stop waits for the thread.
WAIT_SECONDS = 0.5


class Listener:
    def __init__(self, url: str, report: Callable[[str, str | None], None]):
        self._url = url
        self._report = report
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queuectld-listen", daemon=True)
        self._db: Database | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(WAIT_SECONDS * 4)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._listen()
            except (StoreUnavailable, psycopg.Error) as exc:
                if not self._stopped.is_set():
                    self._report("down", str(exc).strip().splitlines()[0] if str(exc) else "")
            finally:
                if self._db is not None:
                    self._db.close()
                    self._db = None
            self._stopped.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        self._db = Database(self._url, APPLICATION_NAME)
        self._db.execute(f"LISTEN {CHANNEL}")
        self._db.execute(f"LISTEN {CANCEL_CHANNEL}")
        self._db.execute(f"LISTEN {RULES_CHANNEL}")
        self._report("up", None)
        conn = self._db.conn
        while not self._stopped.is_set():
            for notice in conn.notifies(timeout=WAIT_SECONDS, stop_after=1):
                if notice.channel == RULES_CHANNEL:
                    self._report("rules", notice.payload)
                else:
                    self._report("cancel" if notice.channel == CANCEL_CHANNEL else "due", None)
