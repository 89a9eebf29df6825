"""Fixtures that run a real daemon in a temporary data home.

Every process a test starts is recorded by pid (the daemon and, just before
it is stopped, all its descendants) and killed if still alive afterwards, so
a failing test leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from queuectl_client import Client

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Daemon:
    """One queuectld process on a data home, driven by tests."""

    def __init__(self, home: Path, workers: int | None = 0, extra: tuple[str, ...] = ()):
        self.home = home
        self.workers = workers
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.known: dict[int, float] = {}  # pid -> create time, for cleanup
        self.socket = home / "queuectld.sock"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["QUEUECTL_HOME"] = str(self.home)
        env["QUEUECTL_NO_AUTOSTART"] = "1"
        env.pop("QUEUECTL_SOCKET", None)
        # The daemon, its workers and the CLI must run this checkout, not whatever
        # copy of the package happens to be installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        return env

    def start(self, wait: bool = True) -> Daemon:
        args = [sys.executable, "-m", "queuectld", "--home", str(self.home), "--log-level", "debug"]
        if self.workers is not None:
            args += ["--workers", str(self.workers)]
        args += list(self.extra)
        log = open(self.home / "daemon-test.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=self.env(),
            cwd=str(self.home),
        )
        log.close()
        self._remember(self.proc.pid)
        if wait:
            wait_for(self._answers, 15, what="the daemon to listen")
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log_text()}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.socket))
            return True
        except OSError:
            return False
        finally:
            sock.close()

    def log_text(self) -> str:
        try:
            return (self.home / "daemon-test.log").read_text(errors="replace")
        except OSError:
            return ""

    def _remember(self, pid: int) -> None:
        try:
            self.known[pid] = psutil.Process(pid).create_time()
        except psutil.Error:
            pass

    def remember_descendants(self) -> None:
        if self.proc is None:
            return
        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                self._remember(child.pid)
        except psutil.Error:
            pass

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client(self) -> Client:
        return Client(home=self.home, autostart=False)

    def cli(
        self, *args: str, input: str | None = None, timeout: float = 60, cwd: str | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "queuectl_client.cli.main", *args],
            capture_output=True,
            text=True,
            env=self.env(),
            input=input,
            timeout=timeout,
            cwd=cwd or str(self.home),
        )

    def cli_json(self, *args: str):
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def stop(self, timeout: float = 30) -> int | None:
        """Graceful stop (SIGTERM); returns the exit status."""
        if self.proc is None:
            return None
        self.remember_descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        status = self.proc.returncode
        self.proc = None
        return status

    def kill9(self) -> None:
        assert self.proc is not None
        self.remember_descendants()
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self) -> Daemon:
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        if self.proc is not None:
            self.remember_descendants()
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        for pid, created in self.known.items():
            try:
                process = psutil.Process(pid)
                if abs(process.create_time() - created) < 0.05:
                    process.kill()
            except psutil.Error:
                pass


@pytest.fixture
def home():
    # Short paths: a Unix socket path must fit in 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="qctl-"))
    os.chmod(path, 0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon_factory(home):
    started: list[Daemon] = []

    def make(
        workers: int | None = 0,
        extra: tuple[str, ...] = (),
        start: bool = True,
        data_home: Path | None = None,
    ) -> Daemon:
        daemon = Daemon(data_home or home, workers, extra)
        started.append(daemon)
        if start:
            daemon.start()
        return daemon

    yield make
    for daemon in started:
        daemon.cleanup()


@pytest.fixture
def daemon(daemon_factory) -> Daemon:
    """A running daemon with no workers: tests scale the fleet when they are ready."""
    return daemon_factory(workers=0)


@pytest.fixture
def workdir(home) -> Path:
    path = home / "work"
    path.mkdir()
    return path
