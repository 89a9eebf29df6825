"""The connection to PostgreSQL: opening it without ever showing its password, the
statements the backend runs through it, and which errors mean "try again later".

Transactions are the runner's: the connection is in autocommit mode, so nothing
begins behind its back, and `BEGIN`, `SAVEPOINT` and `COMMIT` are sent as the
runner asks. A connection lost between batches is opened again at the next one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict

from queuectld.store.base import StoreUnavailable
from queuectld.store.location import redact

# SQLSTATEs that are the server's state, not the request's: a hot standby, a server
# shutting down, a statement canceled. Connection errors and serialization failures
# and deadlocks are psycopg OperationalErrors already.
_UNAVAILABLE_STATES = {"25006", "57P01", "57P02", "57P03", "57014", "53100", "53200", "53300"}
# Connection parameters a location may set itself; these are used where it does not.
# A store that does not answer, or a peer host that vanished, is noticed in seconds
# (the daemon answers `unavailable`) rather than hanging the store thread.
DEFAULTS = {
    "connect_timeout": "10",
    "application_name": "queuectld",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}
# Session settings, unless the location's `options=-c name=value` sets them.
SESSION = {
    # Acknowledged means committed: a commit returns once the server has it on
    # disk, whatever the server's default.
    "synchronous_commit": "on",
    # Waiting longer than this for a row or a lock another daemon holds is an error
    # (StoreUnavailable) rather than a store thread stuck behind a stuck peer; like
    # SQLite's busy timeout.
    "lock_timeout": "5s",
}


def _password(url: str) -> str | None:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, True))
    return query.get("password") or (unquote(parts.password) if parts.password else None)


def _scrub(text: str, secret: str | None) -> str:
    if secret:
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, "***")
    return text


def unavailable(exc: BaseException, secret: str | None = None) -> BaseException:
    """StoreUnavailable for an error of the server or the connection; other errors
    (a bug, a constraint) are the caller's and stay as they are."""
    if isinstance(exc, StoreUnavailable):
        return exc
    state = getattr(exc, "sqlstate", None)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) or (
        state in _UNAVAILABLE_STATES
    ):
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StoreUnavailable(f"database unavailable: {_scrub(text, secret)}")
    return exc


class Portable:
    """The shared store code's statements (store/shared/, `?` marks) on a Database,
    in psycopg's parameter style."""

    def __init__(self, db: Database):
        self._db = db

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def _style(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self._db.all(self._style(sql), params)

    def one(self, sql: str, params: Sequence = ()) -> tuple | None:
        return self._db.one(self._style(sql), params)

    def value(self, sql: str, params: Sequence = ()) -> Any:
        return self._db.value(self._style(sql), params)

    def rowcount(self, sql: str, params: Sequence = ()) -> int:
        return self._db.rowcount(self._style(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        self._db.executemany(self._style(sql), rows)


class Database:
    """One connection, and the few ways the backend talks through it."""

    def __init__(self, url: str, application_name: str = DEFAULTS["application_name"]):
        self.location = redact(url)
        self._url = url
        self._secret = _password(url)
        # Which connection of a daemon this is, in pg_stat_activity (unless the URL says).
        self._defaults = {**DEFAULTS, "application_name": application_name}
        self.conn = self._connect()

    def _connect(self) -> psycopg.Connection:
        try:
            given = conninfo_to_dict(self._url)
        except psycopg.ProgrammingError as exc:
            message = _scrub(str(exc).strip(), self._secret)
            raise ValueError(f"bad PostgreSQL location {self.location}: {message}") from None
        options = {k: v for k, v in self._defaults.items() if k not in given}
        try:
            conn = psycopg.connect(self._url, autocommit=True, **options)
            for name, value in SESSION.items():
                if name not in given.get("options", ""):
                    conn.execute(f"SET {name} = '{value}'")
        except psycopg.Error as exc:
            raise unavailable(psycopg.OperationalError(str(exc)), self._secret) from None
        return conn

    def reconnect_if_lost(self) -> None:
        if self.conn.closed or self.conn.broken:
            self.conn.close()
            self.conn = self._connect()

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence | dict | None = None) -> psycopg.Cursor:
        try:
            return self.conn.execute(sql, params)
        except psycopg.Error as exc:
            mapped = unavailable(exc, self._secret)
            if mapped is exc:
                raise
            raise mapped from None

    def all(self, sql: str, params: Sequence | dict | None = None) -> list[tuple]:
        return self.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence | dict | None = None) -> tuple | None:
        return self.execute(sql, params).fetchone()

    def value(self, sql: str, params: Sequence | dict | None = None) -> Any:
        row = self.one(sql, params)
        return row[0] if row else None

    def rowcount(self, sql: str, params: Sequence | dict | None = None) -> int:
        return self.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        rows = list(rows)
        if not rows:
            return
        try:
            with self.conn.cursor() as cursor:
                cursor.executemany(sql, rows)
        except psycopg.Error as exc:
            mapped = unavailable(exc, self._secret)
            if mapped is exc:
                raise
            raise mapped from None

    @contextmanager
    def attempt(self, name: str) -> Iterator[None]:
        """Run a block that may violate a constraint inside its own savepoint: in
        PostgreSQL a failed statement spoils the transaction until it is rolled back
        to a savepoint, so a caught IntegrityError must take its block back."""
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except errors.IntegrityError:
            self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.execute(f"RELEASE SAVEPOINT {name}")

    def close(self) -> None:
        self.conn.close()
