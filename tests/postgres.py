"""A PostgreSQL database of its own for a test: made, handed over as a URL, dropped.

The server is QUEUECTL_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres); only databases named `qctl_...`
are made and dropped there. A server that cannot be reached fails the tests that
need it, so a run without PostgreSQL never passes for a run on both backends;
QUEUECTL_TEST_POSTGRES=0 leaves the backend out on purpose (a machine without a
server).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

from queuectld.store.location import redact

POSTGRES_URL = os.environ.get(
    "QUEUECTL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
POSTGRES_WANTED = os.environ.get("QUEUECTL_TEST_POSTGRES", "1") != "0"


@contextmanager
def postgres_database(purpose: str = "contract") -> Iterator[str]:
    """The URL of a new, empty database (`qctl_<purpose>_<random>`), dropped afterwards
    whatever happened."""
    try:
        import psycopg
    except ImportError as exc:
        missing = f"the postgres backend needs psycopg ({exc}): pip install -e '.[test]'"
    else:
        missing = None
    if missing:
        pytest.fail(f"{missing}, or set QUEUECTL_TEST_POSTGRES=0 to leave it out", pytrace=False)
    name = f"qctl_{purpose}_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unreachable = str(exc).strip().splitlines()[0]
    else:
        unreachable = None
    if unreachable:
        pytest.fail(
            f"PostgreSQL is not reachable at {redact(POSTGRES_URL)}: {unreachable}; start "
            "it, or set QUEUECTL_TEST_POSTGRES=0 to leave the postgres backend out",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path="/" + name))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
