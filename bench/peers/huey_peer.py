"""huey with SqliteHuey and its process consumer (`-k process -w N`), default settings."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench.clock import clock_command, read_clock
from bench.peers import Peer, sample_latencies, wait_until
from bench.procs import PYTHON, child_env, stop_process


class HueyPeer(Peer):
    name = "huey"

    def __init__(self) -> None:
        self._app = None

    def unavailable(self) -> str | None:
        try:
            import huey  # noqa: F401
        except ImportError:
            return "huey is not installed (pip install huey)"
        return None

    def describe(self) -> str:
        import huey

        return f"huey {huey.__version__}, SqliteHuey, process consumer"

    def _open(self, folder: Path):
        """The suite's side of the huey app, on a database in this run's folder."""
        if self._app is None:
            os.environ["BENCH_HUEY_DB"] = str(folder.parent / "huey.db")
            os.environ["BENCH_HUEY_UNTIMED_FILL"] = "1"
            from bench.peers import huey_app

            self._app = huey_app
        self._app.huey.flush()
        return self._app

    def _consumer(self, workers: int, folder: Path) -> subprocess.Popen:
        env = child_env(BENCH_HUEY_DB=os.environ["BENCH_HUEY_DB"])
        env.pop("BENCH_HUEY_UNTIMED_FILL", None)
        with open(folder / "huey-consumer.log", "ab") as log:
            return subprocess.Popen(
                [PYTHON, "-m", "huey.bin.huey_consumer", "bench.peers.huey_app.huey"]
                + ["-k", "process", "-w", str(workers)],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def drain_seconds(self, jobs: int, workers: int, folder: Path) -> float:
        app = self._open(folder)
        first = folder / "huey-first"
        app.shell(clock_command(first))
        for _ in range(jobs - 1):
            app.shell("true")
        consumer = self._consumer(workers, folder)
        try:
            started = read_clock(first, timeout=60)
            wait_until(lambda: app.huey.result_count() >= jobs, timeout=600)
            return time.time() - started
        finally:
            stop_process(consumer)

    def latency_samples(self, jobs: int, workers: int, folder: Path, cap: float) -> list[float]:
        app = self._open(folder)
        consumer = self._consumer(workers, folder)
        try:
            app.shell(clock_command(folder / "huey-warm-up"))
            read_clock(folder / "huey-warm-up", timeout=60)
            return sample_latencies(app.shell, folder, "huey", jobs, cap)
        finally:
            stop_process(consumer)
