"""A queuectld started for one measurement: its own temporary home, stopped by its pid."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from bench.procs import PYTHON, child_env, stop_process
from queuectl_client.client import Client, DaemonUnreachable

START_TIMEOUT = 30.0


class BenchDaemon:
    """`with BenchDaemon(workers=2) as d:` starts a daemon; leaving the block stops it."""

    def __init__(self, workers: int, home: Path | None = None, keep_home: bool = False):
        self.workers = workers
        self._own_home = home is None
        self.home = home or Path(tempfile.mkdtemp(prefix="queuectl-bench-"))
        self.keep_home = keep_home
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home / "bench-daemon.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> BenchDaemon:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "queuectld",
                    "--home",
                    str(self.home),
                    "--workers",
                    str(self.workers),
                ],
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C meant for the suite reaches us, not it
            )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"queuectld exited at start: {self.log_tail()}")
            try:
                with self.client() as client:
                    status = client.status()
                if status["workers"]["idle"] >= self.workers:
                    return
            except DaemonUnreachable:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"queuectld not ready after {START_TIMEOUT:g} s: {self.log_tail()}")

    def client(self) -> Client:
        return Client(home=self.home, autostart=False)

    def wait_workers_idle(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while client.status()["workers"]["idle"] < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{count} workers not idle after {timeout:g} s")
                time.sleep(0.02)

    def process(self) -> psutil.Process:
        return psutil.Process(self.pid)

    def rss_bytes(self) -> int:
        return self.process().memory_info().rss

    def worker_processes(self) -> list[psutil.Process]:
        return self.process().children(recursive=False)

    def db_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.home.glob("queuectl.db*"))

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        if self._own_home and not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> BenchDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
