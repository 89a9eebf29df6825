"""Helpers for the dashboard's tests: the app on a test server, talking to a real
daemon, and `queuectl web` as a process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

aiohttp = pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")
pytest.importorskip("jinja2", reason="the web extra (jinja2) is not installed")

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from queuectl_client.client import Client  # noqa: E402
from queuectl_client.web.app import make_app  # noqa: E402
from queuectl_client.web.security import Guard  # noqa: E402

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def run_app(
    home: Path, check: Callable[[TestClient], Awaitable[None]], guard: Guard | None = None
) -> None:
    """check(client) against the dashboard of the daemon in `home`."""

    async def main() -> None:
        app = make_app(lambda: Client(home=home, autostart=False), guard or Guard(), 0.2)
        async with TestClient(TestServer(app)) as client:
            await check(client)

    asyncio.run(main())


class WebProcess:
    """`queuectl web` on a free port, stopped (by pid) when the test ends."""

    def __init__(self, daemon, *args: str) -> None:
        self.log = daemon.home / "web-test.log"
        with open(self.log, "ab") as log:
            self.proc = self._start(daemon, log, args)
        line = self.proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if match is None:
            self.stop()
            raise AssertionError(f"queuectl web printed no URL: {line!r} {self.log.read_text()}")
        self.url = match.group(1).rstrip("/")

    @staticmethod
    def _start(daemon, log, args: tuple[str, ...]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "queuectl_client.cli.main", "web", "--listen", "127.0.0.1:0",
             "--interval", "0.2", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=daemon.env(),
            cwd=str(daemon.home),
        )  # fmt: skip

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode
