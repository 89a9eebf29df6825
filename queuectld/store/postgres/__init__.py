"""The PostgreSQL backend: one database that several daemons share (needs the
`postgres` extra: psycopg 3)."""

from queuectld.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
