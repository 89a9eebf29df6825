"""Who may use the daemon: Unix socket permissions, peer credentials, a socket
group, TCP with TLS and a token; and who jobs run as."""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import queuectl_client.remote  # noqa: F401 - loaded before a child drops privileges
from queuectl_client.cli import app
from queuectl_client.cli.main import main as cli_main
from tests.conftest import wait_for
from tests.rawwire import frame, read_responses

# The CLI loads a command's module when it runs; a child that dropped privileges
# cannot read the interpreter's files any more.
app.load_all()

ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to create a second user and switch to it"
)


# -- a second local user ---------------------------------------------------------


class LocalUser:
    def __init__(self, name: str, uid: int, gid: int):
        self.name, self.uid, self.gid = name, uid, gid


@pytest.fixture
def make_user():
    """Create throwaway users and groups; remove them afterwards."""
    users: list[str] = []
    groups: list[str] = []

    def make(group: str | None = None) -> LocalUser:
        import pwd

        name = f"qctl{secrets.token_hex(3)}"
        cmd = ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"]
        if group:
            cmd += ["--groups", group]
        subprocess.run([*cmd, name], check=True, capture_output=True)
        users.append(name)
        entry = pwd.getpwnam(name)
        return LocalUser(name, entry.pw_uid, entry.pw_gid)

    def make_group() -> str:
        name = f"qctlg{secrets.token_hex(3)}"
        subprocess.run(["groupadd", name], check=True, capture_output=True)
        groups.append(name)
        return name

    make.group = make_group
    yield make
    for name in users:
        subprocess.run(["userdel", name], capture_output=True)
    for name in groups:
        subprocess.run(["groupdel", name], capture_output=True)


def cli_as(user: LocalUser, daemon, *args: str, cwd: str = "/") -> tuple[int, str, str]:
    """Run the queuectl CLI in a child process that has become `user`.

    The child is forked from this (root) process and calls the CLI in-process, so
    it needs no access to the interpreter's files, only to the daemon's socket.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        out, err = io.StringIO(), io.StringIO()
        try:
            os.close(read_fd)
            os.setgroups(os.getgrouplist(user.name, user.gid))
            os.setgid(user.gid)
            os.setuid(user.uid)
            os.chdir(cwd)
            os.environ.update(QUEUECTL_HOME=str(daemon.home), QUEUECTL_NO_AUTOSTART="1")
            sys.argv = ["queuectl", *args]
            sys.stdout, sys.stderr = out, err
            try:
                cli_main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # reported to the parent, never raised here
            err.write(f"child failed: {exc!r}")
        finally:
            payload = json.dumps([code, out.getvalue(), err.getvalue()]).encode()
            os.write(write_fd, payload)
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    code, out, err = json.loads(b"".join(chunks))
    return code, out, err


# -- the Unix socket ---------------------------------------------------------------


def test_socket_is_0600_in_a_0700_home(daemon):
    assert oct(daemon.socket.stat().st_mode & 0o777) == "0o600"
    assert oct(daemon.home.stat().st_mode & 0o777) == "0o700"
    assert oct((daemon.home / "queuectl.db").stat().st_mode & 0o777) == "0o600"


@ROOT_ONLY
def test_another_user_cannot_connect_by_default(daemon, make_user):
    other = make_user()
    code, _, err = cli_as(other, daemon, "status")
    assert code == 3, err
    assert "Permission denied" in err and "belongs to another user" in err
    assert err.count("\n") == 1 and "Traceback" not in err


@ROOT_ONLY
def test_peer_credentials_refuse_another_user_even_when_the_socket_is_open(daemon, make_user):
    other = make_user()
    # Someone loosened the file permissions; the daemon still checks the peer's uid.
    os.chmod(daemon.home, 0o711)
    os.chmod(daemon.socket, 0o666)
    code, _, err = cli_as(other, daemon, "status")
    assert code == 1, err
    assert f"unauthorized: uid {other.uid} may not use this daemon" in err
    assert err.count("\n") == 1
    assert daemon.client().status()["daemon"]["pid"] == daemon.pid  # root still may


@ROOT_ONLY
def test_socket_group_lets_members_in_and_runs_their_jobs_as_themselves(
    daemon_factory, make_user, home
):
    group = make_user.group()
    member = make_user(group=group)
    outsider = make_user()
    # The scheduler's clock runs a minute per second, so a schedule fires quickly.
    clock = ("--clock", "2030-01-01T10:00:00Z,60")
    daemon = daemon_factory(workers=1, extra=("--socket-group", group, *clock))
    import grp

    gid = grp.getgrnam(group).gr_gid
    assert daemon.socket.stat().st_gid == gid
    assert oct(daemon.socket.stat().st_mode & 0o777) == "0o660"
    assert oct(daemon.home.stat().st_mode & 0o777) == "0o710"

    shared = Path(home.parent) / f"qctl-shared-{secrets.token_hex(3)}"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    try:
        out = shared / "who"
        code, stdout, err = cli_as(
            member,
            daemon,
            "enqueue",
            "--id",
            "mine",
            "--command",
            f"id -u > {out}; id -G >> {out}",
            cwd=str(shared),
        )
        assert code == 0, err
        assert daemon.cli("wait", "mine", "--timeout", "20").returncode == 0
        uid_line, groups_line = out.read_text().splitlines()
        assert int(uid_line) == member.uid  # not root
        assert gid in {int(g) for g in groups_line.split()}
        code, _, err = cli_as(outsider, daemon, "status")
        assert code != 0
        # A schedule added by the member fires jobs that run as the member too.
        fired = shared / "fired"
        code, _, err = cli_as(
            member, daemon, "schedule", "add", "mine", "--cron", "* * * * *", "--",
            f"id -u > {fired}", cwd=str(shared),
        )  # fmt: skip
        assert code == 0, err
        wait_for(lambda: fired.exists() and fired.read_text().strip(), what="a firing")
        assert int(fired.read_text()) == member.uid
    finally:
        subprocess.run(["rm", "-rf", str(shared)])


# -- TCP -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def token_file(home) -> Path:
    path = home / "token"
    path.write_text(secrets.token_hex(32) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def tls_pair(home) -> tuple[Path, Path]:
    cert, key = home / "cert.pem", home / "key.pem"
    # The documented one-line command for a self-signed pair.
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def start_failure(daemon_factory, *extra: str) -> str:
    daemon = daemon_factory(extra=extra, start=False)
    daemon.start(wait=False)
    assert daemon.proc.wait(15) != 0
    daemon.proc = None
    return daemon.log_text().strip()


def test_tcp_without_tls_is_refused_off_loopback_and_without_a_token(
    daemon_factory, token_file, home
):
    port = free_port()
    err = start_failure(
        daemon_factory, "--listen", f"0.0.0.0:{port}", "--token-file", str(token_file)
    )
    assert err.splitlines()[-1] == (
        f"queuectld: refusing to listen on 0.0.0.0:{port} without TLS: give --tls-cert and "
        "--tls-key, or listen on a loopback address"
    )
    err = start_failure(daemon_factory, "--listen", f"127.0.0.1:{port}")
    assert "--listen needs --token-file" in err.splitlines()[-1]
    token_file.chmod(0o644)
    err = start_failure(
        daemon_factory, "--listen", f"127.0.0.1:{port}", "--token-file", str(token_file)
    )
    assert "readable by everyone" in err.splitlines()[-1]


def test_tcp_on_loopback_needs_the_token_first(daemon_factory, token_file):
    port = free_port()
    daemon = daemon_factory(
        extra=("--listen", f"127.0.0.1:{port}", "--token-file", str(token_file))
    )
    url = f"tcp://127.0.0.1:{port}"
    ok = daemon.cli("--connect", url, "--token-file", str(token_file), "status", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["daemon"]["pid"] == daemon.pid

    wrong = daemon.home / "wrong"
    wrong.write_text("x" * 64)
    started = time.monotonic()
    bad = daemon.cli("--connect", url, "--token-file", str(wrong), "status")
    assert bad.returncode == 1 and bad.stderr.strip() == "queuectl: unauthorized: wrong token"
    assert time.monotonic() - started >= 0.4  # a wrong guess costs time
    none = daemon.cli("--connect", url, "status")
    assert none.returncode == 3 and "needs a token" in none.stderr

    # The daemon commands act on the daemon at --connect, or refuse what they cannot do there.
    remote = ("--connect", url, "--token-file", str(token_file))
    assert daemon.cli(*remote, "daemon", "start").returncode == 2
    status = daemon.cli(*remote, "daemon", "status", "--json")
    assert json.loads(status.stdout)["pid"] == daemon.pid

    # Anything but hello-with-token first: refused and closed.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(frame({"id": 1, "op": "list_jobs", "args": {}}))
        responses, closed = read_responses(sock, timeout=5)
    assert closed and responses[0]["error"]["code"] == "unauthorized"


def test_tls_listener_with_token_and_jobs_never_see_the_token(
    daemon_factory, token_file, tls_pair, workdir
):
    cert, key = tls_pair
    port = free_port()
    listen = ("--listen", f"0.0.0.0:{port}", "--token-file", str(token_file))
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    daemon = daemon_factory(workers=1, extra=(*listen, *tls, "--allow-root"))
    url = f"tcp://localhost:{port}"
    remote = ("--connect", url, "--token-file", str(token_file), "--tls-ca", str(cert))
    token = token_file.read_text().strip()
    env_dump = workdir / "env"
    env = {**daemon.env(), "QUEUECTL_TOKEN": token, "QUEUECTL_TOKEN_FILE": str(token_file)}
    result = subprocess.run(
        [sys.executable, "-m", "queuectl_client.cli.main", *remote, "enqueue", "--id", "remote",
         "--env", f"QUEUECTL_TOKEN={token}", "--command", f"env > {env_dump}"],
        capture_output=True, text=True, env=env, cwd=str(workdir), timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert daemon.cli(*remote, "wait", "remote", "--timeout", "20").returncode == 0
    dumped = env_dump.read_text()
    assert token not in dumped and "QUEUECTL_TOKEN" not in dumped
    assert "QUEUECTL_JOB_ID=remote" in dumped

    # Plain TCP to the TLS port, or TLS without trusting the certificate: clean failures.
    plain = daemon.cli("--connect", url, "--token-file", str(token_file), "status")
    assert plain.returncode == 3 and "Traceback" not in plain.stderr
    untrusted = daemon.cli(
        "--connect", f"tls://localhost:{port}", "--token-file", str(token_file), "status"
    )
    assert untrusted.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def test_a_root_daemon_refuses_tcp_jobs_without_allow_root(daemon_factory, token_file):
    if os.geteuid() != 0:
        pytest.skip("only a daemon running as root refuses: it cannot switch users for TCP")
    port = free_port()
    daemon = daemon_factory(
        extra=("--listen", f"127.0.0.1:{port}", "--token-file", str(token_file))
    )
    result = daemon.cli(
        "--connect", f"tcp://127.0.0.1:{port}", "--token-file", str(token_file),
        "enqueue", "--command", "true",
    )  # fmt: skip
    assert result.returncode == 1
    assert "unauthorized: this daemon runs as root" in result.stderr
    assert "--allow-root" in result.stderr
    wait_for(lambda: "jobs from TCP clients are refused" in daemon.log_text(), what="the warning")


@ROOT_ONLY
def test_a_socket_systemd_opened_to_a_group_lets_that_group_in(
    daemon_factory, make_user, home, workdir
):
    """queuectld.socket has SocketGroup=queuectl and SocketMode=0660: its members
    must get past the peer check without --socket-group."""
    import grp
    import shutil

    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed")
    group = make_user.group()
    member = make_user(group=group)
    outsider = make_user()
    run_dir = Path(home.parent) / f"qctl-run-{secrets.token_hex(3)}"
    run_dir.mkdir(mode=0o755)
    os.chmod(run_dir, 0o755)
    activated = run_dir / "queuectld.sock"
    daemon = daemon_factory(start=False)
    log = open(home / "daemon-test.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [activate, "--listen", str(activated), "--fdname=queuectld",
         "-E", f"PYTHONPATH={Path(__file__).resolve().parent.parent}",
         sys.executable, "-m", "queuectld", "--home", str(home), "--workers", "0"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    log.close()
    daemon.proc = proc
    daemon._remember(proc.pid)
    try:
        wait_for(activated.exists, what="the activator to listen")
        os.chown(activated, 0, grp.getgrnam(group).gr_gid)  # what SocketGroup= does
        os.chmod(activated, 0o660)
        code, out, err = cli_as(member, daemon, "--socket", str(activated), "status", "--json")
        assert code == 0, err
        assert json.loads(out)["daemon"]["pid"] == proc.pid
        os.chmod(activated, 0o666)  # even reachable, an outsider is refused by uid
        code, _, err = cli_as(outsider, daemon, "--socket", str(activated), "status")
        assert code == 1 and "unauthorized" in err
    finally:
        daemon.cleanup()
        shutil.rmtree(run_dir, ignore_errors=True)
