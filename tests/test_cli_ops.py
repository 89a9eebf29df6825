"""The CLI for people and scripts: live view, stats, progress, colour, width, JSON, completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.conftest import ROOT, wait_for
from tests.terminal import run_on_pty
from tests.tools import require_tool

CLI = [sys.executable, "-m", "queuectl_client.cli.main"]


def idle_fleet(daemon, count: int) -> None:
    client = daemon.client()
    client.scale_workers(count)
    wait_for(lambda: client.status()["workers"]["idle"] == count, what=f"{count} idle workers")


# -- JSON everywhere -----------------------------------------------------------


def test_every_command_that_prints_has_json(daemon):
    assert daemon.cli_json("enqueue", "--command", "echo out", "--id", "j1") == ["j1"]
    assert daemon.cli_json("enqueue", '{"id": "j2", "command": "exit 1", "max_retries": 0}') == [
        "j2"
    ]
    assert daemon.cli_json("enqueue", "--command", "sleep 60", "--id", "later", "--delay", "600")
    assert daemon.cli_json("worker", "start", "--count", "1") == {"target": 1}
    assert daemon.cli("wait", "j1", "j2", "--timeout", "20").returncode == 1  # j2 is dead
    assert daemon.cli_json("logs", "j1") == {
        "id": "j1",
        "run": 1,
        "state": "completed",
        "running": False,
        "bytes": 4,
        "output": "out\n",
    }
    assert daemon.cli_json("dlq", "retry", "j2") == ["j2"]
    assert daemon.cli_json("config", "set", "max-retries", "5") == {
        "key": "max-retries",
        "value": 5,
    }
    assert daemon.cli_json("config", "get", "max-retries") == {
        "key": "max-retries",
        "value": 5,
        "scope": "cluster",
    }
    assert daemon.cli_json("cancel", "later")["state"] == "canceled"
    stopped = daemon.cli_json("worker", "stop")
    assert stopped["target"] == 0 and stopped["alive"] == 0
    stats = daemon.cli_json("stats")
    assert stats["total"]["completed"]["hour"] == 1
    frame = daemon.cli_json("top", "--count", "1")
    assert {"jobs", "workers", "daemon", "next", "cpu_percent"} <= set(frame)
    watched = daemon.cli("status", "--watch", "--json", "--count", "2", "--interval", "0.2")
    lines = watched.stdout.splitlines()
    assert len(lines) == 2 and all(
        json.loads(line)["daemon"]["pid"] == daemon.pid for line in lines
    )
    assert daemon.cli_json("daemon", "status")["running"] is True
    assert daemon.cli("logs", "j1", "--json", "-f").returncode == 2
    stop = daemon.cli_json("daemon", "stop")
    assert stop == {"stopped": True, "pid": daemon.pid}
    daemon.proc.wait(10)


def test_usage_errors_are_one_line(daemon):
    for args, text in (
        (["top", "--interval", "0"], "Invalid value for '--interval'"),
        (["list", "--state", "bogus"], "'bogus' is not one of"),
        (["completion", "tcsh"], "'tcsh' is not one of"),
        (["stats", "--bogus"], "No such option '--bogus'"),
    ):
        result = daemon.cli(*args)
        assert result.returncode == 2, args
        [line] = result.stderr.splitlines()
        assert line.startswith("queuectl: ") and text in line and "--help" in line
    refused = daemon.cli("stats", "--queue", "")
    assert refused.returncode == 1
    assert refused.stderr == "queuectl: bad_request: stats: field 'queue' must not be empty\n"


# -- tables, colour, progress ----------------------------------------------------


def test_tables_fit_the_terminal_and_stay_whole_in_a_pipe(daemon):
    long_command = "echo " + "x" * 150
    for i in range(3):
        daemon.cli("enqueue", "--command", long_command, "--id", f"long-{i}")
    env = daemon.env()
    env["COLUMNS"] = "60"
    narrow = subprocess.run([*CLI, "list"], capture_output=True, text=True, env=env)
    assert narrow.returncode == 0
    assert all(len(line) <= 60 for line in narrow.stdout.splitlines()), narrow.stdout
    assert "…" in narrow.stdout
    piped = daemon.cli("list")
    assert long_command in piped.stdout  # a script gets every character
    code, screen, _ = run_on_pty([*CLI, "list"], daemon.env(), columns=50)
    assert code == 0
    assert all(len(_visible(line)) <= 50 for line in screen.splitlines()), screen


def _visible(line: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line).rstrip("\r")


def test_colour_only_on_a_terminal_and_never_with_no_color(daemon):
    daemon.cli("enqueue", "--command", "true", "--id", "c1")
    code, screen, _ = run_on_pty([*CLI, "list"], daemon.env())
    assert code == 0 and "\x1b[34mpending" in screen  # blue
    env = daemon.env()
    env["NO_COLOR"] = "1"
    code, plain, _ = run_on_pty([*CLI, "list"], env)
    assert code == 0 and "pending" in plain and "\x1b[" not in plain
    assert "\x1b[" not in daemon.cli("list").stdout
    assert "\x1b[" not in daemon.cli("status").stdout


def test_wait_shows_progress_only_on_a_terminal(daemon):
    ids = [f"w{i}" for i in range(12)]
    for job_id in ids:
        daemon.cli("enqueue", "--command", "sleep 0.3", "--id", job_id)
    idle_fleet(daemon, 2)
    code, bar, out = run_on_pty([*CLI, "wait", *ids], daemon.env(), stream="stderr")
    assert code == 0
    assert "waiting [" in bar and "12/12 jobs" in bar
    assert out.splitlines() == [f"{job_id}: completed" for job_id in ids]
    piped = daemon.cli("wait", *ids)
    assert piped.returncode == 0 and piped.stderr == ""


def test_enqueue_file_shows_progress_for_a_large_file_on_a_terminal(daemon, workdir):
    path = workdir / "big.jsonl"
    line = json.dumps({"command": "true", "env": {"PAD": "p" * 80}}) + "\n"
    count = (1024 * 1024) // len(line) + 100
    path.write_text(line * count)
    code, bar, out = run_on_pty(
        [*CLI, "enqueue", "--file", str(path)], daemon.env(), stream="stderr", timeout=120
    )
    assert code == 0, bar
    assert "enqueue [" in bar and "100%" in bar
    assert len(out.split()) == count
    small = workdir / "small.jsonl"
    small.write_text(line * 10)
    code, bar, out = run_on_pty(
        [*CLI, "enqueue", "--file", str(small)], daemon.env(), stream="stderr"
    )
    assert code == 0 and _without_notes(bar) == "" and len(out.split()) == 10
    piped = daemon.cli("enqueue", "--file", str(path), timeout=120)
    assert piped.returncode == 0 and _without_notes(piped.stderr) == ""


def _without_notes(stderr: str) -> str:
    """stderr without the note that a fleet of 0 will not start the jobs."""
    return "".join(
        line for line in stderr.splitlines(True) if not line.startswith("queuectl: note: ")
    )


# -- the live view -------------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket), killed by its pid afterwards."""

    def __init__(self, home: Path):
        self.binary = require_tool("tmux", "tmux")
        self.socket = str(home / f"tmux-{uuid.uuid4().hex[:8]}")
        self.pid: int | None = None

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.binary, "-S", self.socket, *args], capture_output=True, text=True, timeout=30
        )

    def start(self, command: str, env: dict[str, str], columns: int, rows: int) -> None:
        exports = " ".join(f"{k}={_quote(v)}" for k, v in env.items() if k.isidentifier())
        result = self.run(
            "new-session", "-d", "-x", str(columns), "-y", str(rows), "-s", "top",
            f"env -i {exports} {command}; sleep 30",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        self.pid = int(self.run("display-message", "-p", "#{pid}").stdout.strip())

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "top").stdout

    def stop(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def test_top_live_view_under_tmux(daemon, workdir, home):
    idle_fleet(daemon, 2)
    client = daemon.client()
    client.enqueue({"id": "busy-job", "command": "python3 -c 'while True: pass'"})
    client.enqueue({"id": "sleepy", "command": "sleep 60"})
    client.enqueue({"id": "later-job", "command": "echo later", "delay": 600})
    wait_for(lambda: client.status()["workers"]["busy"] == 2, what="2 busy workers")
    tmux = Tmux(home)
    try:
        env = daemon.env()
        env["TERM"] = "xterm-256color"
        tmux.start(" ".join([*CLI, "top", "--interval", "0.5"]), env, columns=120, rows=30)

        def drawn():
            text = tmux.screen()
            return text if "CPU%" in text and "later-job" in text and "sleep 60" in text else None

        screen = wait_for(drawn, 20, what="the live view")
        # Redrawn in place: after the CPU meter has two readings, the busy job shows ~100%.
        time.sleep(1.5)
        screen = tmux.screen()
        busy_line = next(line for line in screen.splitlines() if "busy-job" in line)
        sleepy_line = next(line for line in screen.splitlines() if "sleepy" in line)
        # A spinning job shows real CPU use (a share of a loaded 2-core machine), a
        # sleeping one none.
        assert float(busy_line.split()[6]) > 20, busy_line
        assert float(sleepy_line.split()[6]) < 5, sleepy_line
        assert "M" in busy_line.split()[7]  # RSS in MiB
        assert "python3 -c" in busy_line
        assert "in 9m" in screen  # the delayed job, due in about ten minutes
        assert "jobs:" in screen and "processing 2" in screen
        assert screen.count("queuectld ") == 1  # one frame on screen, not a scroll of them
        assert all(len(line) <= 120 for line in screen.splitlines())
        tmux.run("send-keys", "-t", "top", "q")
        wait_for(lambda: "CPU%" not in tmux.screen(), 10, what="q to quit the view")
    finally:
        tmux.stop()
        client.cancel("busy-job")
        client.cancel("sleepy")


# -- completion ------------------------------------------------------------------


def complete(daemon, words: str, shell: str = "bash") -> list[str]:
    env = daemon.env()
    env["_QUEUECTL_COMPLETE"] = f"{shell}_complete"
    env["COMP_WORDS"] = words
    env["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    result = subprocess.run(CLI, capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


def test_completion_offers_job_ids_states_and_commands(daemon):
    client = daemon.client()
    client.enqueue({"id": "job-one", "command": "true"}, {"id": "job-two", "command": "true"})
    client.enqueue({"id": "other", "command": "true"})
    client.enqueue({"id": "jobless", "command": "exit 1", "max_retries": 0})
    assert complete(daemon, "queuectl show job") == ["job-one", "job-two", "jobless"]
    assert complete(daemon, "queuectl wait job-one ") == ["job-two", "jobless", "other"]
    assert complete(daemon, "queuectl list --state d") == ["dead"]
    assert "stats" in complete(daemon, "queuectl st")
    assert complete(daemon, "queuectl config get max-r") == ["max-retries"]
    client.scale_workers(1)
    client.wait(["jobless", "job-one", "job-two", "other"], timeout=20)
    assert complete(daemon, "queuectl dlq retry ") == ["jobless"]
    daemon.stop()
    assert complete(daemon, "queuectl show job") == []  # no daemon: nothing, quickly


def wrapper_on_path(home: Path) -> dict[str, str]:
    """A `queuectl` on PATH that runs this checkout, as the shells will call it."""
    bin_dir = home / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "queuectl"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m queuectl_client.cli.main "$@"\n'
    )
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_bash_completion_script_completes_job_ids(daemon, home):
    bash = require_tool("bash", "bash")
    daemon.client().enqueue({"id": "bash-job", "command": "true"})
    env = {**daemon.env(), **wrapper_on_path(home)}
    script = (
        'eval "$(queuectl completion bash)"\n'
        "COMP_WORDS=(queuectl show bash-); COMP_CWORD=2\n"
        "_queuectl_completion queuectl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run([bash, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bash-job"]


def test_fish_completion_script_completes_job_ids(daemon, home):
    fish = require_tool("fish", "fish")
    daemon.client().enqueue({"id": "fish-job", "command": "true"})
    env = {**daemon.env(), **wrapper_on_path(home), "HOME": str(home)}
    result = subprocess.run(
        [
            fish,
            "--no-config",
            "-c",
            'queuectl completion fish | source; complete -C "queuectl show fish-"',
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["fish-job"]
    assert result.stderr == ""
    commands = subprocess.run(
        [fish, "--no-config", "-c", 'queuectl completion fish | source; complete -C "queuectl st"'],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    # Commands come with their description after a tab, as fish shows them.
    assert any(
        line.startswith("stats\tThroughput over the last minute")
        for line in commands.stdout.splitlines()
    ), commands.stdout


def test_zsh_completion_script_loads(daemon, home):
    zsh = require_tool("zsh", "zsh")
    env = {**daemon.env(), **wrapper_on_path(home), "HOME": str(home)}
    script = (
        "autoload -U compinit && compinit -u\n"
        'eval "$(queuectl completion zsh)"\n'
        "print -r -- ${_comps[queuectl]}\n"
    )
    result = subprocess.run([zsh, "-f", "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "_queuectl_completion"


# -- finding the daemon ----------------------------------------------------------


def test_client_uses_the_system_socket_when_no_personal_daemon_answers(daemon, home):
    env = daemon.env()
    for name in ("QUEUECTL_HOME", "QUEUECTL_NO_AUTOSTART", "QUEUECTL_SOCKET"):
        env.pop(name, None)
    env["XDG_STATE_HOME"] = str(home / "user-state")  # a user with no daemon of their own
    env["QUEUECTL_SYSTEM_SOCKET"] = str(daemon.socket)  # stands for /run/queuectl/...
    result = subprocess.run([*CLI, "status", "--json"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["daemon"]["pid"] == daemon.pid
    assert result.stderr == ""  # no daemon was started
    assert not (home / "user-state" / "queuectl").exists()
    # Naming a home means that home: no wandering to the system daemon.
    env["QUEUECTL_HOME"] = str(home / "elsewhere")
    env["QUEUECTL_NO_AUTOSTART"] = "1"
    named = subprocess.run([*CLI, "status"], capture_output=True, text=True, env=env)
    assert named.returncode == 3
    # `daemon start` starts a personal daemon, whatever the system one does.
    env.pop("QUEUECTL_HOME")
    env.pop("QUEUECTL_NO_AUTOSTART")
    started = subprocess.run(
        [*CLI, "daemon", "start", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    daemon._remember(info["pid"])
    assert info["started"] is True and info["home"] == str(home / "user-state" / "queuectl")
    personal = subprocess.run([*CLI, "status", "--json"], capture_output=True, text=True, env=env)
    assert json.loads(personal.stdout)["daemon"]["pid"] == info["pid"]
    stop = subprocess.run([*CLI, "daemon", "stop"], capture_output=True, text=True, env=env)
    assert stop.returncode == 0 and f"(pid {info['pid']}) stopped" in stop.stdout
