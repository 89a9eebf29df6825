"""The SQLite backend: one file in the data home, the default store."""

from queuectld.store.sqlite.store import ForeignDatabase, SQLiteStore

__all__ = ["ForeignDatabase", "SQLiteStore"]
