"""Copies running jobs' output into a shared store (`Store.ships_output`).

On a store shared by daemons on several hosts, a run's log file is on the host
that runs it; `logs` through any other daemon reads the store. Every
SHIP_INTERVAL the new bytes of each active run's log file go into the store in
one call for all runs, at most SHIP_CHUNK bytes per run per tick; the rest of a
run's file goes in with its result (`ship_rest`, called in the store call that
finishes the run), so that nobody sees the run over without its last output.
The file is capped by the worker (log-max-bytes): what is in it is what ships.
"""

from __future__ import annotations

import asyncio
import logging

from queuectld.store import Store

log = logging.getLogger("queuectld.output")

SHIP_INTERVAL = 0.5
SHIP_CHUNK = 256 * 1024


class OutputShipping:
    def __init__(self, loop: asyncio.AbstractEventLoop, runner, active: dict):
        self.loop = loop
        self.runner = runner
        self.active = active  # the dispatcher's runs, by job id
        self._in_flight = False
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._timer = self.loop.call_later(SHIP_INTERVAL, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = self.loop.call_later(SHIP_INTERVAL, self._tick)
        if self._in_flight or not self.active:
            return
        runs = list(self.active.values())
        self._in_flight = True
        self.runner.submit(_ship_new, (runs,), {}, self._shipped)

    def _shipped(self, result, error: BaseException | None) -> None:
        self._in_flight = False
        if error is not None:
            log.debug("could not ship output: %s", error)  # the next tick tries again
            return
        for run, offset in result:
            run.shipped = max(run.shipped, offset)


def read_log_chunk(path: str | None, offset: int, limit: int) -> bytes:
    """Up to `limit` bytes of a run's log file from `offset`; none when it is not there."""
    if not path:
        return b""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(limit)
    except OSError:
        return b""


def _ship_new(store: Store, runs: list) -> list:
    """In the store thread: one append of every run's new bytes."""
    chunks, shipped = [], []
    for run in runs:
        data = read_log_chunk(run.log_path, run.shipped, SHIP_CHUNK)
        if data:
            chunks.append((run.job.seq, run.job.run, run.shipped, data))
            shipped.append((run, run.shipped + len(data)))
    store.append_output(chunks)
    return shipped


def ship_rest(store: Store, seq: int, run: int, path: str | None) -> None:
    """In the store thread, with the run's result: what the store lacks of its file.

    Starts from what the store holds, not from what the ticks shipped: a tick whose
    call failed left a gap that this fills."""
    if not path:
        return
    offset = store.output_size(seq, run)
    while True:
        data = read_log_chunk(path, offset, SHIP_CHUNK)
        if not data:
            return
        store.append_output([(seq, run, offset, data)])
        offset += len(data)
