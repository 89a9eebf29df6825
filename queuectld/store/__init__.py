"""Job storage: one narrow interface (`Store`) and its backends."""

from queuectld.store.base import (
    Canceled,
    ClaimedJob,
    DaemonRecord,
    Finished,
    JobRow,
    NewJob,
    RunRow,
    Store,
    StoreError,
    StoreUnavailable,
    Transition,
)

__all__ = [
    "Canceled",
    "ClaimedJob",
    "DaemonRecord",
    "Finished",
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
    """Open the backend a location names; a plain path is a SQLite file."""
    from queuectld.store.sqlite.store import SQLiteStore

    return SQLiteStore(url_or_path)
