"""Jobs that write their own start time, and the cost of that with no queue at all.

A job's command `exec date +%s%N > FILE` records the wall clock right after its
shell has started and exec'd `date`. The same command started straight from
Python with `subprocess` gives the spawn time itself, which the latency
targets are stated above.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

from bench.stats import median


def clock_command(path: Path) -> str:
    return f"exec date +%s%N > {shlex.quote(str(path))}"


def read_clock(path: Path, timeout: float = 30.0) -> float:
    """The time a clock job wrote, waiting for it to appear and be complete."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text:
            return int(text) / 1e9
        if time.monotonic() > deadline:
            raise TimeoutError(f"no start time in {path} after {timeout:g} s")
        time.sleep(0.0005)


def spawn_latency(directory: Path, samples: int) -> float:
    """Median seconds from `Popen` to the clock written by the same command, no queue."""
    directory.mkdir(parents=True, exist_ok=True)
    delays = []
    for i in range(samples):
        path = directory / f"direct-{i}"
        started = time.time()
        proc = subprocess.Popen(["/bin/sh", "-c", clock_command(path)], close_fds=True)
        proc.wait()
        delays.append(read_clock(path) - started)
    return median(delays)
