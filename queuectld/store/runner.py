"""Group commit: one thread owns the store and runs calls in batches.

Every call from the event loop is queued; the thread takes all the calls that
are waiting, runs each inside its own savepoint of one transaction, commits
once and only then answers the callers, in the event loop: a future for
`call`, a plain callback for `submit`. Under load many enqueues share one
fsync; an idle daemon pays nothing (the thread blocks on the queue).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from queuectld.store.base import Store, StoreUnavailable

log = logging.getLogger("queuectld.store")

T = TypeVar("T")
_STOP = object()
MAX_BATCH = 1024


class StoreRunner:
    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop):
        self.store = store
        self.loop = loop
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store", daemon=True)
        self.batches = 0
        self.calls = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._calls.put(_STOP)
        self._thread.join()
        self.store.close()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future:
        """Run fn(store, *args, **kwargs) in the next batch; the future resolves after commit.

        `fn` is either a function of the store, or a method of the `Store` interface
        (`Store.add_jobs`), which is bound to the backend's implementation.
        """
        future = self.loop.create_future()
        self._calls.put((self._bind(fn), args, kwargs, future))
        return future

    def submit(
        self,
        fn: Callable[..., T],
        args: tuple,
        kwargs: dict,
        callback: Callable[[Any, BaseException | None], None],
    ) -> None:
        """Like `call`, but `callback(result, error)` is called after the commit.

        For the dispatcher, which issues a few calls per job and awaits none of
        them: no future, and no loop turn between the commit and the callback.
        Callbacks run before the tasks awaiting `call`s of the same batch resume,
        so a job claimed in an enqueue's batch is on its way to its worker before
        the enqueue is answered.
        """
        self._calls.put((self._bind(fn), args, kwargs, callback))

    def _bind(self, fn: Callable) -> Callable:
        name = getattr(fn, "__name__", None)
        if name is not None and getattr(Store, name, None) is fn:
            return getattr(type(self.store), name)
        return fn

    def _run(self) -> None:
        while True:
            first = self._calls.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._calls.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list) -> None:
        outcomes: list[tuple[asyncio.Future, Any, BaseException | None]] = []
        store = self.store
        try:
            store.begin()
        except Exception as exc:
            self._resolve([(call[3], None, _as_unavailable(exc)) for call in batch])
            return
        for fn, args, kwargs, future in batch:
            try:
                store.savepoint()
                result = fn(store, *args, **kwargs)
                store.release()
                outcomes.append((future, result, None))
            except Exception as exc:  # one failing call must not sink the others
                try:
                    store.rollback_savepoint()
                except Exception:
                    pass
                outcomes.append((future, None, exc))
        try:
            store.commit()
        except Exception as exc:
            try:
                store.rollback()
            except Exception:
                pass
            error = _as_unavailable(exc)
            outcomes = [(future, None, error) for future, _, _ in outcomes]
        self.batches += 1
        self.calls += len(batch)
        self._resolve(outcomes)

    def _resolve(self, outcomes: list) -> None:
        try:
            self.loop.call_soon_threadsafe(_settle, outcomes)
        except RuntimeError:
            pass  # the loop is closed: the daemon is exiting


def _settle(outcomes: list) -> None:
    for answer, result, error in outcomes:
        if not isinstance(answer, asyncio.Future):
            try:
                answer(result, error)
            except Exception:  # one caller's bug must not leave the others unanswered
                log.exception("a store callback failed")
        elif answer.done():
            continue
        elif error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result)


def _as_unavailable(exc: BaseException) -> BaseException:
    if isinstance(exc, StoreUnavailable):
        return exc
    return StoreUnavailable(f"database unavailable: {exc}")
