"""Other job queues run side by side with queuectl: same jobs, same worker count, same run.

Every peer runs `/bin/sh -c COMMAND` for each job, as queuectl does. Its drain
is timed from the first job's own start clock to the moment the suite sees
the last job done; its latency from the enqueue call returning to the job's
own start clock.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

SETTLE_AFTER_JOB = 0.005  # a latency job has written its clock; let it exit before the next


class Peer(ABC):
    name: str

    @abstractmethod
    def unavailable(self) -> str | None:
        """Why this peer cannot run here, or None when it can."""

    @abstractmethod
    def describe(self) -> str:
        """Version and set-up, for the table."""

    @abstractmethod
    def drain_seconds(self, jobs: int, workers: int, folder: Path) -> float:
        """Seconds from the first job's start until all `jobs` are done."""

    @abstractmethod
    def latency_samples(self, jobs: int, workers: int, folder: Path, cap: float) -> list[float]:
        """Seconds from each enqueue returning to its job's start (stops after `cap` s)."""


def sample_latencies(
    submit: Callable[[str], None], folder: Path, prefix: str, jobs: int, cap: float
) -> list[float]:
    """Submit `jobs` clock jobs one at a time; each delay is job clock minus ack time.

    Stops early after `cap` seconds, so a slow peer costs a bounded time.
    """
    from bench.clock import clock_command, read_clock

    delays = []
    deadline = time.monotonic() + cap
    for i in range(jobs):
        path = folder / f"{prefix}-{i}"
        submit(clock_command(path))
        acked = time.time()
        delays.append(read_clock(path) - acked)
        time.sleep(SETTLE_AFTER_JOB)
        if time.monotonic() > deadline:
            break
    return delays


def wait_until(done: Callable[[], bool], timeout: float, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout:g} s")
        time.sleep(interval)


def all_peers() -> list[Peer]:
    from bench.peers.huey_peer import HueyPeer
    from bench.peers.rq_peer import RQPeer
    from bench.peers.tsp_peer import TaskSpoolerPeer

    return [HueyPeer(), TaskSpoolerPeer(), RQPeer()]
