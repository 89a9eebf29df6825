"""The store contract: every backend runs these tests unchanged.

A test gets `store`, a synchronous face of the `Store` interface whose every
call goes through a `StoreRunner` (one transaction per call, as the daemon's
calls are batched), so no test touches a backend's connection or transaction
mechanics. A new backend adds itself to BACKENDS with a factory that opens a
fresh, empty store (and removes it afterwards); that is all it has to do to be
checked.

The PostgreSQL backend runs in a database of its own per test, made and dropped
by tests/postgres.py (which says where the server is, and how to leave the
backend out on a machine without one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from queuectld.store import ClaimedJob, NewJob, Store, StoreError, Transition, open_store
from queuectld.store.runner import StoreRunner
from tests.postgres import POSTGRES_URL, POSTGRES_WANTED, postgres_database

__all__ = ["POSTGRES_URL", "POSTGRES_WANTED", "postgres_database"]


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Store]:
    yield open_store(str(tmp_path / "contract.db"))


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Store]:
    with postgres_database() as url:
        yield open_store(url)


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Store]]] = {"sqlite": _sqlite}
if POSTGRES_WANTED:
    BACKENDS["postgres"] = _postgres


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
    with BACKENDS[request.param](tmp_path) as backend:
        contract = Contract(backend)
        try:
            yield contract
        finally:
            contract.close()


def job(command: str = "true", job_id: str | None = None, **kw) -> NewJob:
    fields = dict(
        max_retries=3, priority=0, run_at=0.0, timeout=0.0, queue="default", cwd="/",
        environ={"PATH": "/bin"},
    )  # fmt: skip
    fields.update(kw)
    return NewJob(id=job_id, command=command, **fields)


OWNER = "d1"  # the daemon that claims and finishes runs, where only one takes part


def add(store, jobs: list[NewJob], now: float = 0.0) -> list[str]:
    """Insert a batch; a job whose unique key is held gets the holder's id."""
    return store.insert_jobs(jobs, now, "ignore").ids


def claim(store, limit: int = 10, now: float = 10.0) -> list[str]:
    """Ids of the jobs `OWNER` claims."""
    return [c.id for c in store.claim_due_jobs(now, limit, OWNER)]


def finish(store, job_id: str, state: str, now: float = 11.0) -> list[str]:
    """End the latest run of a job, counted, with the job in `state`; returns the
    dependents canceled with it."""
    seq, run, _, _ = store.job_log_path(job_id, None)
    outcome = "completed" if state == "completed" else "failed"
    finished = store.finish_run(
        seq, run, owner=OWNER, change=Transition(state, outcome, True, None, None), now=now
    )
    assert finished.applied
    return finished.canceled


def end_run(store, claimed: ClaimedJob, state: str, run_at=None, error=None, **kwargs) -> None:
    """A counted run that ended with its job in `state` (completed or failed)."""
    store.finish_run(
        claimed.seq,
        claimed.run,
        owner=OWNER,
        change=Transition(state, state, True, run_at, error),
        **kwargs,
    )


def insert_every_kind(store) -> None:
    """Every way a job enters the store: plain, with dependencies, unique (held or
    not), canceled at insert, and a batch rolled back by a duplicate id."""
    add(store, [job(), job(), job(queue="mail")])
    add(store, [job(job_id="gone"), job(job_id="dep", after=["gone"])])
    store.insert_jobs([job(unique_key="k")], 0, "ignore")
    store.insert_jobs([job(unique_key="k")], 0, "ignore")  # held: not inserted
    claim(store, limit=1)
    store.cancel_waiting_job("gone", 1.0)  # cancels its dependent too
    add(store, [job(job_id="late", after=["gone"])])  # canceled at insert
    with pytest.raises(StoreError):
        add(store, [job(job_id="new"), job(job_id="late")])  # duplicate id: rolled back


def purge_beside_a_job_that_stays(store) -> None:
    """Two completed jobs are purged, one with an environment of its own; a pending
    job that shares the other's environment stays."""
    add(store, [job(job_id="lone", environ={"PATH": "/only/here"}), job(job_id="shared")])
    claim(store)
    finish(store, "lone", "completed", now=11)
    finish(store, "shared", "completed", now=11)
    add(store, [job(job_id="stays", run_at=1000)])  # shares "shared"'s environment
    assert store.purge_jobs("completed", 100.0, None, 100)[0] == 2
