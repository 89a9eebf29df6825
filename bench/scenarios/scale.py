"""6. Scale: the daemon holding many pending jobs (a million in the full run).

One worker is held by a blocker job (it reads a named pipe) so that the
backlog stays pending while `status`, `list --limit 50` and one enqueue are
timed through the Client library. Then "first dispatch": the blocker is
released and records its end time; a marker job of higher priority than the
backlog records its start time; the difference is what it takes the daemon to
notice a free worker and pick the next job out of the backlog. The same probe
is run on the empty store first, for comparison.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from bench.clock import clock_command, read_clock
from bench.context import Context
from bench.daemon import BenchDaemon
from bench.report import Figure
from bench.stats import median
from queuectl_client.client import Client

SCENARIO = "6 scale"
FILL_BATCH = 10_000
BLOCKER_PRIORITY = 5  # above the backlog, so the one worker takes it next
MARKER_PRIORITY = 10  # above the blocker: first out once the blocker ends


class Blocker:
    """A job that holds the worker until released, then records when it ended."""

    def __init__(self, folder: Path, number: int):
        self.fifo = folder / f"blocker-{number}.fifo"
        self.ended = folder / f"blocker-{number}.end"
        os.mkfifo(self.fifo)
        self.id = ""

    def command(self) -> str:
        return f"read _ < {self.fifo}; {clock_command(self.ended)}"

    def release(self, timeout: float = 30.0) -> None:
        """Write a line to the pipe once the blocker has it open."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:  # ENXIO: no reader yet
                if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise
                time.sleep(0.001)
        try:
            os.write(fd, b"\n")
        finally:
            os.close(fd)


def _wait_running(client: Client, job_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        running = client.status()["workers"]["running"]
        if any(r["job"] == job_id for r in running):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not start within {timeout:g} s")
        time.sleep(0.002)


def _wait_pending(client: Client, count: int, timeout: float = 2.0) -> None:
    """The backlog is all pending: a job claimed ahead for the worker while the
    blocker was new goes back within a few average runs."""
    deadline = time.monotonic() + timeout
    while (pending := client.status()["jobs"]["pending"]) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {pending} jobs pending after the fill")
        time.sleep(0.01)


def _timed_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e3)
    return median(times)


class FirstDispatchProbe:
    """Blocker/marker pairs on a one-worker daemon; see the module docstring."""

    def __init__(self, client: Client, folder: Path):
        self.client = client
        self.folder = folder
        self.count = 0
        self.current = self._hold()

    def _hold(self) -> Blocker:
        self.count += 1
        blocker = Blocker(self.folder, self.count)
        [blocker.id] = self.client.enqueue(
            {"command": blocker.command(), "priority": BLOCKER_PRIORITY}
        )
        return blocker

    def measure(self) -> float:
        """Seconds from the held blocker's end to the marker's start."""
        _wait_running(self.client, self.current.id)
        marker = self.folder / f"marker-{self.count}"
        self.client.enqueue({"command": clock_command(marker), "priority": MARKER_PRIORITY})
        released, self.current = self.current, self._hold()
        released.release()
        return read_clock(marker) - read_clock(released.ended)

    def close(self) -> None:
        try:
            self.current.release(timeout=5.0)
        except OSError:
            pass


def run(ctx: Context) -> list[Figure]:
    p = ctx.profile
    folder = ctx.folder("scale")
    with BenchDaemon(workers=1) as daemon, daemon.client() as client:
        probe = FirstDispatchProbe(client, folder)
        try:
            empty = median([probe.measure() for _ in range(p.scale_probes)])
            ctx.log(f"first dispatch, empty store: {empty * 1e3:.2f} ms")
            _wait_running(client, probe.current.id)
            started = time.perf_counter()
            jobs = ({"command": "true"} for _ in range(p.scale_jobs))
            for _ in client.enqueue_many(jobs, batch_size=FILL_BATCH):
                pass
            fill = p.scale_jobs / (time.perf_counter() - started)
            ctx.log(f"filled {p.scale_jobs:,} jobs at {fill:,.0f} jobs/s")
            _wait_pending(client, p.scale_jobs)
            status_ms = _timed_ms(client.status, p.scale_probes)
            list_ms = _timed_ms(lambda: client.list_jobs(limit=50), p.scale_probes)
            enqueue_ms = _timed_ms(lambda: client.enqueue({"command": "true"}), p.scale_probes)
            rss = daemon.rss_bytes()
            first = median([probe.measure() for _ in range(p.scale_probes)])
            ctx.log(f"first dispatch at scale: {first * 1e3:.2f} ms")
            rss = max(rss, daemon.rss_bytes())
            db_size = daemon.db_bytes()
        finally:
            probe.close()
    at = f"{p.scale_jobs:,} pending"
    probes = f"median of {p.scale_probes}, Client library"
    return [
        Figure(SCENARIO, f"fill {at} (batches of {FILL_BATCH:,})", fill, "jobs/s"),
        Figure(SCENARIO, f"status, {at}", status_ms, "ms", key="scale.status", detail=probes),
        Figure(SCENARIO, f"list --limit 50, {at}", list_ms, "ms", key="scale.list", detail=probes),
        Figure(
            SCENARIO, f"one enqueue, {at}", enqueue_ms, "ms", key="scale.enqueue", detail=probes
        ),
        Figure(
            SCENARIO,
            f"first dispatch, {at}",
            first * 1e3,
            "ms",
            key="scale.dispatch",
            detail="worker freed -> next job's process running, spawn included",
        ),
        Figure(SCENARIO, "first dispatch, empty store", empty * 1e3, "ms", detail="same probe"),
        Figure(SCENARIO, f"daemon RSS, {at}", rss / 2**20, "MB", key="scale.rss"),
        Figure(SCENARIO, f"database size, {at}", db_size / 2**20, "MB", key="scale.db"),
    ]
