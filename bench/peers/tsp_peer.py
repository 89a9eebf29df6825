"""task-spooler (`tsp`, Debian's package task-spooler) with N slots.

tsp keeps one waiting process per queued job and its server accepts about a
thousand of them, so a 5,000-job backlog cannot be enqueued first: a shell
loop enqueues while the slots drain, as a user's script would.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from bench.clock import clock_command, read_clock
from bench.peers import Peer, sample_latencies, wait_until


def find_tsp() -> str | None:
    """`tsp` on Debian; elsewhere the binary may be `ts` (not moreutils' `ts`)."""
    for name in ("tsp", "ts"):
        path = shutil.which(name)
        if path is None:
            continue
        try:
            out = subprocess.run([path, "-V"], capture_output=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = (out.stdout + out.stderr).decode(errors="replace")
        if "spooler" in text.lower():
            return path
    return None


class TaskSpoolerPeer(Peer):
    name = "tsp"

    def __init__(self) -> None:
        self.binary = find_tsp()

    def unavailable(self) -> str | None:
        if self.binary is None:
            return "task-spooler is not installed (apt-get install task-spooler)"
        return None

    def describe(self) -> str:
        out = subprocess.run([self.binary, "-V"], capture_output=True, check=False)
        words = (out.stdout + out.stderr).decode(errors="replace").split()
        version = next((w for w in words if w.startswith("v") and w[1:2].isdigit()), "")
        return f"task-spooler {version.lstrip('v')}, -n (output not stored)".replace("  ", " ")

    def _env(self, folder: Path) -> dict[str, str]:
        env = dict(os.environ)
        # Its own server on its own socket, so the user's tsp queue is never touched.
        env.update(TS_SOCKET=str(folder / "tsp.socket"), TMPDIR=str(folder), TS_MAXFINISHED="50")
        return env

    def _tsp(self, env: dict[str, str], *args: str) -> str:
        out = subprocess.run([self.binary, *args], env=env, capture_output=True, check=True)
        return out.stdout.decode(errors="replace")

    def _busy(self, env: dict[str, str]) -> bool:
        listing = self._tsp(env, "-l").splitlines()[1:]
        return any(line.split()[1] in ("queued", "running") for line in listing if line.split())

    def _server(self, workers: int, folder: Path) -> dict[str, str]:
        folder.mkdir(parents=True, exist_ok=True)
        env = self._env(folder)
        self._tsp(env, "-S", str(workers))
        return env

    def _enqueue_argv(self, command: str) -> list[str]:
        return [self.binary, "-n", "/bin/sh", "-c", command]

    def drain_seconds(self, jobs: int, workers: int, folder: Path) -> float:
        folder = folder / "tsp-drain"
        env = self._server(workers, folder)
        first = folder / "first"
        loop = (
            f"{shlex.join(self._enqueue_argv(clock_command(first)))} >/dev/null\n"
            f"i=1; while [ $i -lt {jobs} ]; do "
            f"{shlex.join(self._enqueue_argv('true'))} >/dev/null; i=$((i+1)); done\n"
        )
        try:
            enqueuer = subprocess.Popen(["/bin/sh", "-c", loop], env=env)
            started = read_clock(first, timeout=60)
            enqueuer.wait()
            wait_until(lambda: not self._busy(env), timeout=600, interval=0.02)
            return time.time() - started
        finally:
            self._tsp(env, "-K")

    def latency_samples(self, jobs: int, workers: int, folder: Path, cap: float) -> list[float]:
        folder = folder / "tsp-latency"
        env = self._server(workers, folder)
        try:

            def submit(command: str) -> None:
                subprocess.run(
                    self._enqueue_argv(command), env=env, stdout=subprocess.DEVNULL, check=True
                )

            return sample_latencies(submit, folder, "job", jobs, cap)
        finally:
            self._tsp(env, "-K")
