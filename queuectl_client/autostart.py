"""Start a daemon in the background for a data home, and wait until it answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from protocol.paths import SOCKET_NAME

DAEMON_LOG = "queuectld.log"


def start_daemon(home: Path, socket_path: Path, timeout: float = 10.0) -> int | None:
    """Spawn `queuectld` detached from this process; return its pid once it listens,
    or None when another client's daemon came up first (and ours gave way to it).

    Every failure is a DaemonUnreachable that says first that nothing listens on
    `socket_path`, then why no daemon could be started there.
    """
    from queuectl_client.client import DaemonUnreachable

    default_socket = home / SOCKET_NAME
    if socket_path != default_socket and _answers(default_socket):
        # The home has its daemon: one started for another socket would only be
        # refused the home. The socket named is the mistake.
        raise DaemonUnreachable(
            f"nothing listens on {socket_path}; the daemon of {home} listens on {default_socket}"
        )
    cannot = f"nothing listens on {socket_path}, and queuectld cannot be started for {home}"
    log_path = home / DAEMON_LOG
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise DaemonUnreachable(f"{cannot}: it is not a directory") from None
    except OSError as exc:
        raise DaemonUnreachable(f"{cannot}: cannot create it ({exc.strerror or exc})") from None
    try:
        log = open(log_path, "ab")  # noqa: SIM115 - closed right after the spawn
    except OSError as exc:
        reason = exc.strerror or exc
        raise DaemonUnreachable(f"{cannot}: cannot write {log_path} ({reason})") from None
    with log:
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
        if proc.poll() is not None:
            # Lost a start-up race with another client's daemon: that one is fine too,
            # but it is not the one this call started.
            if _answers(socket_path) or _wait_for(socket_path, deadline):
                return None
            raise DaemonUnreachable(f"{cannot}: {_last_line(log_path)} (see {log_path})")
        if _answers(socket_path):
            # Whoever answers may be the winner of such a race while ours is still
            # on its way to giving up: only the daemon's own pid tells.
            return proc.pid if _daemon_pid(socket_path) == proc.pid else None
        time.sleep(0.02)
    raise DaemonUnreachable(
        f"queuectld did not start listening on {socket_path} in {timeout:g} s (see {log_path})"
    )


def _wait_for(socket_path: Path, deadline: float) -> bool:
    deadline = min(deadline, time.monotonic() + 2)
    while time.monotonic() < deadline:
        if _answers(socket_path):
            return True
        time.sleep(0.05)
    return False


def _daemon_pid(socket_path: Path) -> int | None:
    from queuectl_client.client import Client

    try:
        with Client(socket=socket_path, autostart=False) as client:
            return client.hello().get("pid")
    except Exception:  # gone again, or refusing us: in any case not known to be ours
        return None


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
    if not lines:
        return "no output"
    return lines[-1].removeprefix("queuectld: ")
