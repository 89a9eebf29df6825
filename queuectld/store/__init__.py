"""Job storage: one narrow interface (`Store`) and its backends."""

import importlib.util
from collections.abc import Callable

from queuectld.store.base import (
    Canceled,
    ClaimedJob,
    DaemonRecord,
    Finished,
    FleetFigures,
    JobRow,
    NewJob,
    RunRow,
    Store,
    StoreError,
    StoreUnavailable,
    Transition,
)
from queuectld.store.location import is_postgres

__all__ = [
    "Canceled",
    "ClaimedJob",
    "DaemonRecord",
    "Finished",
    "FleetFigures",
    "JobRow",
    "NewJob",
    "Store",
    "StoreError",
    "RunRow",
    "StoreUnavailable",
    "Transition",
    "open_listener",
    "open_store",
]


def open_store(url_or_path: str) -> Store:
    """Open the backend a location names: a `postgresql://` or `postgres://` URL (a
    libpq connection string) is a PostgreSQL database, a plain path a SQLite file.

    Each backend is imported only when asked for, so a plain install, without the
    `postgres` extra, never needs psycopg.
    """
    if is_postgres(url_or_path):
        if importlib.util.find_spec("psycopg") is None:
            raise RuntimeError(
                "a PostgreSQL store needs psycopg, which is not installed: "
                "pip install 'queuectl[postgres]'"
            )
        from queuectld.store.postgres.store import PostgresStore

        return PostgresStore(url_or_path)
    from queuectld.store.sqlite.store import SQLiteStore

    return SQLiteStore(url_or_path)


def open_listener(location: str, report: Callable[[str, str | None], None]):
    """What tells this daemon that other daemons made jobs due, for a store that
    several daemons share (store/postgres/listen.py); None for a store of its own.
    Not started: the caller starts and stops it."""
    if not is_postgres(location):
        return None
    from queuectld.store.postgres.listen import Listener

    return Listener(location, report)
