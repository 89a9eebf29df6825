"""Start a daemon in the background for a data home, and wait until it answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMON_LOG = "queuectld.log"


def start_daemon(home: Path, socket_path: Path, timeout: float = 10.0) -> int:
    """Spawn `queuectld` detached from this process; return its pid once it listens."""
    from queuectl_client.client import DaemonUnreachable

    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = home / DAEMON_LOG
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "queuectld", "--home", str(home), "--socket", str(socket_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(socket_path):
            return proc.pid
        if proc.poll() is not None:
            # Lost a start-up race with another client's daemon: that one is fine too.
            if _answers(socket_path):
                return proc.pid
            if proc.returncode != 0 and not _wait_for(socket_path, deadline):
                raise DaemonUnreachable(
                    f"could not start queuectld: {_last_line(log_path)} (see {log_path})"
                )
        time.sleep(0.02)
    raise DaemonUnreachable(f"queuectld did not start listening on {socket_path} in {timeout:g} s")


def _wait_for(socket_path: Path, deadline: float) -> bool:
    deadline = min(deadline, time.monotonic() + 2)
    while time.monotonic() < deadline:
        if _answers(socket_path):
            return True
        time.sleep(0.05)
    return False


def _answers(socket_path: Path) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(socket_path))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"
