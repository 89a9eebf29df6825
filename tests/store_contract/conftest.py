"""The store contract: every backend runs these tests unchanged.

A test gets `store`, a synchronous face of the `Store` interface whose every
call goes through a `StoreRunner` (one transaction per call, as the daemon's
calls are batched), so no test touches a backend's connection or transaction
mechanics. A new backend adds itself to BACKENDS with a factory that opens a
fresh, empty store; that is all it has to do to be checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from queuectld.store import NewJob, Store, open_store
from queuectld.store.runner import StoreRunner


def _sqlite(tmp_path: Path) -> Store:
    return open_store(str(tmp_path / "contract.db"))


BACKENDS: dict[str, Callable[[Path], Store]] = {"sqlite": _sqlite}


class Contract:
    """`store.claim_due_jobs(...)` runs `Store.claim_due_jobs` through the runner."""

    def __init__(self, backend: Store):
        self._loop = asyncio.new_event_loop()
        self._runner = StoreRunner(backend, self._loop)
        self._runner.start()

    def __getattr__(self, name: str) -> Callable:
        method = getattr(Store, name)

        def call(*args, **kwargs):
            return self._loop.run_until_complete(self._runner.call(method, *args, **kwargs))

        return call

    def close(self) -> None:
        self._runner.stop()
        self._loop.close()


@pytest.fixture(params=sorted(BACKENDS))
def store(request, tmp_path) -> Iterator[Contract]:
    contract = Contract(BACKENDS[request.param](tmp_path))
    yield contract
    contract.close()


def job(command: str = "true", job_id: str | None = None, **kw) -> NewJob:
    fields = dict(
        max_retries=3, priority=0, run_at=0.0, timeout=0.0, queue="default", cwd="/",
        environ={"PATH": "/bin"},
    )  # fmt: skip
    fields.update(kw)
    return NewJob(id=job_id, command=command, **fields)
