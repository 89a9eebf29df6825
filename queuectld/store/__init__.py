"""Job storage: one narrow interface (`Store`) and its backends."""

import importlib.util

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

