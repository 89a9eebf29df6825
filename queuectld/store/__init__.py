"""Job storage: one narrow interface (`Store`) and its backends."""

from queuectld.store.base import (
    ClaimedJob,
    NewJob,
    Store,
    StoreError,
    StoreUnavailable,
)

__all__ = ["ClaimedJob", "NewJob", "Store", "StoreError", "StoreUnavailable", "open_store"]


def open_store(url_or_path: str) -> Store:
    """Open the backend a location names; a plain path is a SQLite file."""
    from queuectld.store.sqlite import SQLiteStore

    return SQLiteStore(url_or_path)
