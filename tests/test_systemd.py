"""Running under systemd, for real: unit files, socket activation, sd_notify."""

from __future__ import annotations

import asyncio
import configparser
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from protocol.paths import SOCKET_NAME, SYSTEM_SOCKET
from queuectl_client import Client
from queuectld.service import activation, sdnotify
from queuectld.service.manager import ServiceManager
from tests.conftest import ROOT, wait_for
from tests.tools import require_tool

UNITS = ROOT / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(UNITS / name)
    return parser


def install_for_verify(names: dict[str, str], target: Path) -> list[str]:
    """Copy units under their installed names, pointing ExecStart at an executable.

    systemd-analyze verify insists that the ExecStart binary exists; where pip
    put queuectld differs from machine to machine, so only that path is swapped.
    """
    stub = target / "queuectld"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    paths = []
    for source, installed in names.items():
        text = (UNITS / source).read_text()
        for binary in ("/usr/local/bin/queuectld", "%h/.local/bin/queuectld"):
            text = text.replace(f"ExecStart={binary} ", f"ExecStart={stub} ")
        (target / installed).write_text(text)
        paths.append(str(target / installed))
    return paths


def verify(paths: list[str], user: bool, runtime_dir: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir))
    command = [analyze, *(["--user"] if user else []), "verify", "--man=no", *paths]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    # verify exits 0 even on unknown keys and bad values; any word from it is a finding.
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_system_units_pass_systemd_analyze_verify(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    paths = install_for_verify(
        {"queuectld.service": "queuectld.service", "queuectld.socket": "queuectld.socket"},
        tmp_path,
    )
    verify(paths, user=False, runtime_dir=runtime)


def test_user_units_pass_systemd_analyze_verify(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    # Installed as queuectld.{service,socket} in ~/.config/systemd/user (see docs/operating.md).
    paths = install_for_verify(
        {
            "queuectld-user.service": "queuectld.service",
            "queuectld-user.socket": "queuectld.socket",
        },
        tmp_path,
    )
    verify(paths, user=True, runtime_dir=runtime)


def test_units_say_what_issue_five_asks_for():
    service = unit("queuectld.service")["Service"]
    assert service["Type"] == "notify"
    assert service["WatchdogSec"]
    assert service["KillMode"] == "mixed"
    assert service["TimeoutStopSec"] not in ("", "0")
    assert service["User"] == "queuectl"
    assert service["StateDirectory"] == "queuectl"
    assert service["RuntimeDirectory"] == "queuectl"
    for hardening in ("NoNewPrivileges", "PrivateTmp"):
        assert service[hardening] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] in ("yes", "read-only", "tmpfs")
    user_service = unit("queuectld-user.service")["Service"]
    assert user_service["Type"] == "notify" and user_service["KillMode"] == "mixed"
    assert "User" not in user_service


def test_the_clients_default_sockets_are_the_units_sockets():
    # System: %t is /run for the system manager.
    system = unit("queuectld.socket")["Socket"]["ListenStream"]
    assert system.replace("%t", "/run") == SYSTEM_SOCKET
    # User: %S is $XDG_STATE_HOME (~/.local/state), where the client's data home is.
    user = unit("queuectld-user.socket")["Socket"]["ListenStream"]
    assert user == f"%S/queuectl/{SOCKET_NAME}"
    assert "--home %S/queuectl " in unit("queuectld-user.service")["Service"]["ExecStart"]


def test_sysusers_file_creates_the_dedicated_user(tmp_path):
    sysusers = require_tool("systemd-sysusers", "systemd")
    (tmp_path / "etc").mkdir()
    result = subprocess.run(
        [sysusers, f"--root={tmp_path}", str(UNITS / "queuectl-sysusers.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert passwd.startswith("queuectl:") and ":/var/lib/queuectl:" in passwd
    assert "queuectl:" in (tmp_path / "etc" / "group").read_text()


# -- socket activation ---------------------------------------------------------


def test_daemon_started_by_systemd_socket_activate_serves_the_passed_socket(
    daemon_factory, home, workdir
):
    activate = require_tool("systemd-socket-activate", "systemd")
    daemon = daemon_factory(start=False)  # for its log file and cleanup of every pid
    activated = home / "activated.sock"
    log = open(home / "daemon-test.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [
            activate,
            "--listen",
            str(activated),
            "--fdname=queuectld",
            "-E",
            f"PYTHONPATH={ROOT}",
            sys.executable,
            "-m",
            "queuectld",
            "--home",
            str(home),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    daemon.proc = proc
    daemon._remember(proc.pid)
    wait_for(activated.exists, what="systemd-socket-activate to listen")
    # Nothing started yet: the activator waits for the first connection.
    assert _cmdline(proc.pid)[0] == activate
    with Client(socket=activated, autostart=False) as client:
        [job_id] = client.enqueue({"command": f"echo activated > {workdir}/out"})
        assert client.wait([job_id], timeout=20)["states"][job_id] == "completed"
        info = client.status()["daemon"]
    # The activator exec'd the daemon in place, with the socket as fd 3.
    assert info["pid"] == proc.pid
    assert info["socket_activated"] is True
    assert info["socket"] == str(activated)
    assert not (home / SOCKET_NAME).exists()  # it bound no socket of its own
    assert (workdir / "out").read_text() == "activated\n"
    assert "socket passed by systemd" in daemon.log_text()
    assert daemon.stop() == 0
    # The socket belongs to whoever passed it: systemd keeps listening on it.
    assert activated.exists()


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def test_passed_sockets_meant_for_another_process_are_ignored():
    assert activation.passed_sockets({"LISTEN_FDS": "1", "LISTEN_PID": "1"}) == []
    assert activation.passed_sockets({}) == []
    with pytest.raises(activation.ActivationError):
        activation.passed_sockets({"LISTEN_FDS": "x", "LISTEN_PID": str(os.getpid())})


# -- sd_notify -----------------------------------------------------------------


class NotifyListener:
    """A fake NOTIFY_SOCKET: a datagram socket, by path or in the abstract namespace.

    A thread reads every datagram as it arrives and stamps it, so the times
    are the daemon's sending times, whatever the test is busy with.
    """

    def __init__(self, home: Path, abstract: bool):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"queuectl-test-{uuid.uuid4().hex}"
            self.sock.bind(b"\0" + name.encode())
            self.address = "@" + name
        else:
            path = home / "notify.sock"
            self.sock.bind(str(path))
            self.address = str(path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._arrived = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            with self._arrived:
                self.messages.append((time.monotonic(), fields))
                self._arrived.notify_all()

    def receive_until(self, predicate, timeout: float, start: int = 0) -> tuple[int, dict]:
        """The first message from index `start` on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for index in range(start, len(self.messages)):
                    if predicate(self.messages[index][1]):
                        return index, self.messages[index][1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such message in {timeout} s; got {self.messages}")
                self._arrived.wait(left)

    def close(self) -> None:
        self._closed = True
        self._thread.join()
        self.sock.close()


@pytest.mark.parametrize("abstract", [True, False], ids=["abstract", "path"])
def test_notify_socket_gets_ready_status_watchdog_and_stopping_in_order(
    daemon_factory, home, abstract, monkeypatch
):
    listener = NotifyListener(home, abstract)
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a ping every 0.2 s
    daemon = daemon_factory(workers=1, start=False)
    try:
        daemon.start(wait=False)
        _, ready = listener.receive_until(lambda m: True, 15)
        # READY=1 comes first, and only once the socket answers.
        assert ready.get("READY") == "1", listener.messages
        assert ready["MAINPID"] == str(daemon.pid)
        assert ready["STATUS"] == "0 pending, 0 awaiting retry, 0 running; 0/1 workers busy"
        assert daemon._answers()
        listener.receive_until(lambda m: m.get("WATCHDOG") == "1", 2)
        daemon.client().enqueue({"id": "slow", "command": "sleep 2"})
        _, busy = listener.receive_until(lambda m: "running; 1/1" in m.get("STATUS", ""), 5)
        assert busy["STATUS"] == "0 pending, 0 awaiting retry, 1 running; 1/1 workers busy"
        time.sleep(0.5)
        daemon.proc.send_signal(signal.SIGTERM)  # graceful: the job finishes first
        signalled = time.monotonic()
        listener.receive_until(lambda m: "STOPPING" in m, 5)
        assert daemon.proc.wait(15) == 0
        exited = time.monotonic()
        time.sleep(0.3)
    finally:
        daemon.stop()
        listener.close()
    kinds = [_kind(m) for _, m in listener.messages]
    assert kinds[0] == "READY"
    assert "READY" not in kinds[1:]
    stop_index = kinds.index("STOPPING")
    assert kinds.count("STOPPING") == 1
    assert listener.messages[stop_index][0] - signalled < 0.5  # at once, not after the job
    after_stop = kinds[stop_index + 1 :]
    # While the running job finishes the loop keeps pinging; nothing else is said.
    assert set(after_stop) <= {"WATCHDOG"}, after_stop
    assert "WATCHDOG" in after_stop
    assert all(t <= exited for t, _ in listener.messages)
    # Pings at about half WATCHDOG_USEC for as long as the daemon ran.
    pings = [t for t, m in listener.messages if m.get("WATCHDOG") == "1"]
    assert len(pings) >= 10
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    assert max(gaps) < 0.4, gaps
    # STATUS is sent on change, not on a timer: a handful of lines for this run.
    assert kinds.count("STATUS") <= 4, kinds
    assert "STATUS" in kinds[: kinds.index("STOPPING")]
    assert "job slow completed" in daemon.log_text()


def _kind(message: dict[str, str]) -> str:
    for kind in ("READY", "STOPPING", "WATCHDOG"):
        if kind in message:
            return kind
    return "STATUS"


def test_notify_variables_do_not_reach_workers(daemon_factory, home, monkeypatch):
    listener = NotifyListener(home, abstract=True)
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    try:
        daemon = daemon_factory(workers=1)
        import psutil

        wait_for(lambda: psutil.Process(daemon.pid).children(), what="a worker")
        worker = psutil.Process(daemon.pid).children()[0]
        assert "NOTIFY_SOCKET" not in worker.environ()
    finally:
        listener.close()


def test_watchdog_interval_honours_watchdog_pid():
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "2000000"}) == 2.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
    mine = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert sdnotify.watchdog_interval(mine) == 1.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert sdnotify.watchdog_interval({}) is None


def test_a_blocked_event_loop_sends_no_watchdog_pings():
    """Pings come from the event loop itself: while it is stuck, systemd hears nothing."""

    class Recorder(sdnotify.Notifier):
        def __init__(self):
            super().__init__("@unused")
            self.pings: list[float] = []

        def send(self, *lines: str) -> bool:
            if "WATCHDOG=1" in lines:
                self.pings.append(time.monotonic())
            return True

    async def figures():
        return {}, {"busy": 0, "alive": 0}

    async def store_ping():
        return None

    async def scenario(recorder: Recorder) -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        manager = ServiceManager(loop, recorder, figures, store_ping, watchdog_seconds=0.2)
        await manager.ready()
        await asyncio.sleep(0.5)
        blocked_at = time.monotonic()
        time.sleep(0.6)  # the loop is wedged: no callback can run
        unblocked_at = time.monotonic()
        await asyncio.sleep(0.5)
        manager.close()
        return blocked_at, unblocked_at

    recorder = Recorder()
    blocked_at, unblocked_at = asyncio.run(scenario(recorder))
    during = [t for t in recorder.pings if blocked_at < t < unblocked_at]
    assert during == []
    assert len([t for t in recorder.pings if t < blocked_at]) >= 3
    assert len([t for t in recorder.pings if t > unblocked_at]) >= 3


def test_no_notify_socket_means_no_notifications():
    notifier = sdnotify.Notifier(None)
    assert not notifier.enabled
    assert notifier.ready("x") is False and notifier.watchdog() is False
