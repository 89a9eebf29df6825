"""The CLI contract: exact forms, exit codes, one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_for


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_enqueue_json_prints_the_id_and_generates_one_when_absent(daemon):
    assert daemon.cli("enqueue", '{"id":"job1","command":"sleep 2"}').stdout == "job1\n"
    generated = daemon.cli("enqueue", '{"command":"true"}').stdout.strip()
    assert generated and daemon.client().get_job(generated)["command"] == "true"


def test_duplicate_id_is_a_conflict(daemon):
    daemon.cli("enqueue", '{"id":"dup","command":"true"}')
    result = daemon.cli("enqueue", '{"id":"dup","command":"false"}')
    assert result.returncode == 1
    assert "conflict" in one_line_error(result) and "'dup' already exists" in result.stderr
    assert daemon.client().get_job("dup")["command"] == "true"


def test_unknown_field_is_named(daemon):
    result = daemon.cli("enqueue", '{"command":"true","retries":3}')
    assert result.returncode == 1
    assert "unknown field 'retries'" in one_line_error(result)


def test_malformed_json_says_where(daemon):
    result = daemon.cli("enqueue", '{"command": "true",}')
    assert result.returncode == 2
    assert "invalid JSON at line 1 column 20" in one_line_error(result)


def test_wrong_types_and_values_are_refused(daemon):
    for spec, text in (
        ('{"command": 5}', "'command' must be a string"),
        ('{"command": "x", "max_retries": -2}', "'max_retries' must be >= 0"),
        ('{"command": "x", "priority": "high"}', "'priority' must be an integer"),
        ('{"command": "x", "run_at": "soon"}', "not an ISO 8601 time"),
        ('{"command": "x", "env": {"A": 1}}', "map of string to string"),
        ('"just a string"', "expected a JSON object"),
    ):
        result = daemon.cli("enqueue", spec)
        assert result.returncode in (1, 2), spec
        assert text in one_line_error(result), spec
    assert daemon.client().status()["jobs"]["pending"] == 0


def test_enqueue_options_form(daemon):
    result = daemon.cli(
        "enqueue",
        "--command",
        "echo hi",
        "--id",
        "X",
        "--max-retries",
        "1",
        "--priority",
        "7",
        "--delay",
        "60",
        "--timeout",
        "5",
        "--queue",
        "q1",
    )
    assert result.stdout == "X\n"
    job = daemon.client().get_job("X")
    assert (job["max_retries"], job["priority"], job["timeout"], job["queue"]) == (1, 7, 5, "q1")
    assert daemon.cli("enqueue", "--command", "x", "--run-at", "nope").returncode == 2


def test_enqueue_file_and_stdin_in_batches(daemon, workdir):
    lines = [json.dumps({"id": f"f{i}", "command": "true"}) for i in range(25)]
    path = workdir / "jobs.jsonl"
    path.write_text("\n".join(lines[:20]) + "\n\n")
    assert daemon.cli("enqueue", "--file", str(path)).stdout.split() == [f"f{i}" for i in range(20)]
    result = daemon.cli("enqueue", "--file", "-", input="\n".join(lines[20:]))
    assert result.stdout.split() == [f"f{i}" for i in range(20, 25)]
    bad = daemon.cli("enqueue", "--file", "-", input='{"command":"true"}\n{oops\n')
    assert bad.returncode == 2 and "line 2" in bad.stderr
    assert daemon.client().status()["jobs"]["pending"] == 25


def test_exactly_one_job_source(daemon):
    result = daemon.cli("enqueue")
    assert result.returncode == 2
    assert "exactly one" in one_line_error(result)


def test_show_list_and_json_forms(daemon):
    daemon.cli("enqueue", "--id", "a", "--command", "true")
    daemon.cli("enqueue", "--id", "b", "--command", "true", "--queue", "other")
    listed = daemon.cli_json("list")
    assert [j["id"] for j in listed] == ["a", "b"]
    expected = {
        "id",
        "command",
        "state",
        "attempts",
        "max_retries",
        "priority",
        "queue",
        "created_at",
        "updated_at",
        "run_at",
        "started_at",
        "finished_at",
        "exit_code",
        "last_error",
    }
    assert expected <= set(listed[0])
    assert [j["id"] for j in daemon.cli_json("list", "--queue", "other")] == ["b"]
    assert daemon.cli_json("list", "--state", "completed") == []
    assert daemon.cli_json("list", "--limit", "1")[0]["id"] == "a"
    assert daemon.cli_json("show", "a")["history"] == []
    text = daemon.cli("show", "a").stdout
    assert "state:" in text and "pending" in text
    assert daemon.cli("list", "--state", "bogus").returncode == 2
    missing = daemon.cli("show", "nope")
    assert missing.returncode == 1 and "not_found" in one_line_error(missing)


def test_config_set_get_list_persist(daemon):
    assert daemon.cli("config", "set", "max-retries", "5").stdout.strip() == "max-retries = 5"
    assert daemon.cli("config", "get", "max-retries").stdout.strip() == "5"
    bad = daemon.cli("config", "set", "max-retries", "lots")
    assert bad.returncode == 1 and "whole number" in one_line_error(bad)
    unknown = daemon.cli("config", "set", "colour", "red")
    assert unknown.returncode == 1 and "unknown setting" in one_line_error(unknown)
    daemon.restart()
    assert daemon.cli_json("config", "list")["max-retries"]["value"] == 5
    daemon.cli("enqueue", "--id", "uses-default", "--command", "true")
    assert daemon.client().get_job("uses-default")["max_retries"] == 5


def test_no_daemon_is_exit_3(home):
    env = {
        "QUEUECTL_HOME": str(home / "nothing"),
        "QUEUECTL_NO_AUTOSTART": "1",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "queuectl_client.cli.main", "status"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 3
    assert "no daemon is listening" in one_line_error(result)
    result = subprocess.run(
        [sys.executable, "-m", "queuectl_client.cli.main", "--no-autostart", "daemon", "status"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 3


def test_client_autostarts_a_daemon_and_daemon_stop_stops_it(daemon_factory, home):
    daemon = daemon_factory(start=False)  # only for its environment and cleanup
    env = daemon.env()
    del env["QUEUECTL_NO_AUTOSTART"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "queuectl_client.cli.main",
            "enqueue",
            "--command",
            "true",
            "--id",
            "auto",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(home),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "auto\n"
    assert "started queuectld (pid" in result.stderr
    status = daemon.cli_json("status")
    pid = status["daemon"]["pid"]
    daemon._remember(pid)
    assert daemon.cli("wait", "auto", "--timeout", "20").returncode == 0  # default fleet is 1
    stop = daemon.cli("daemon", "stop")
    assert stop.returncode == 0 and f"(pid {pid}) stopped" in stop.stdout
    assert daemon.cli("daemon", "status").returncode == 3


def autostarting_cli(daemon, *args: str) -> subprocess.CompletedProcess:
    env = daemon.env()
    del env["QUEUECTL_NO_AUTOSTART"], env["QUEUECTL_HOME"]
    return subprocess.run(
        [sys.executable, "-m", "queuectl_client.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_a_data_home_no_daemon_can_start_in_is_unreachable_in_one_line(daemon_factory, home):
    daemon = daemon_factory(start=False)  # only for its environment and cleanup
    (home / "queuectld.log").mkdir()  # the daemon's log cannot be opened
    (home / "file").write_text("")
    cases = [
        (home, f"cannot write {home}/queuectld.log (Is a directory)"),
        (home / "file" / "home", "cannot create it (Not a directory)"),
        (home / "file", "it is not a directory"),
        (Path("/proc/queuectl-test"), "cannot create it (No such file or directory)"),
    ]
    for data_home, reason in cases:
        result = autostarting_cli(daemon, "--home", str(data_home), "status")
        assert result.returncode == 3, result.stderr
        assert one_line_error(result) == (
            f"queuectl: nothing listens on {data_home}/queuectld.sock, "
            f"and queuectld cannot be started for {data_home}: {reason}"
        )


def test_a_mistyped_socket_is_reported_as_one_nothing_listens_on(daemon, home):
    typo = home / "nope.sock"
    result = autostarting_cli(daemon, "--home", str(home), "--socket", str(typo), "status")
    assert result.returncode == 3, result.stderr
    assert one_line_error(result) == (
        f"queuectl: nothing listens on {typo}; the daemon of {home} listens on {daemon.socket}"
    )
    assert not (home / "queuectld.log").exists()  # no doomed daemon was started


def test_of_clients_racing_to_autostart_only_the_one_whose_daemon_won_says_so(daemon_factory, home):
    daemon = daemon_factory(start=False)  # only for its environment and cleanup
    env = daemon.env()
    del env["QUEUECTL_NO_AUTOSTART"]
    command = [sys.executable, "-m", "queuectl_client.cli.main", "status"]
    racers = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    announced = []
    for racer in racers:
        _, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        announced += [line for line in err.decode().splitlines() if "started queuectld" in line]
    pid = daemon.cli_json("status")["daemon"]["pid"]
    daemon._remember(pid)
    assert announced == [f"queuectl: started queuectld (pid {pid}) for {home}"]
    assert daemon.cli("daemon", "stop").returncode == 0


def test_second_daemon_on_the_same_home_refuses(daemon, daemon_factory):
    second = daemon_factory(start=False)
    second.start(wait=False)
    wait_for(lambda: second.proc.poll() is not None, what="the second daemon to exit")
    assert second.proc.returncode == 1
    assert f"another queuectld (pid {daemon.pid}) is already running" in second.log_text()
    assert daemon.client().status()["daemon"]["pid"] == daemon.pid


def test_every_command_has_help_with_an_example(daemon):
    commands = [
        ["enqueue"],
        ["list"],
        ["show"],
        ["logs"],
        ["wait"],
        ["cancel"],
        ["status"],
        ["worker", "start"],
        ["worker", "stop"],
        ["dlq", "list"],
        ["dlq", "retry"],
        ["config", "get"],
        ["config", "set"],
        ["config", "list"],
        ["daemon", "start"],
        ["daemon", "stop"],
        ["daemon", "status"],
        ["stats"],
        ["top"],
        ["completion"],
    ]
    for command in commands:
        result = daemon.cli(*command, "--help")
        assert result.returncode == 0, command
        assert "Example" in result.stdout, command


def test_enqueue_file_stops_at_the_first_bad_line(daemon, workdir):
    # Beyond one batch of 10,000: the first is sent, nothing after the bad line is.
    lines = [json.dumps({"id": f"b{i}", "command": "true"}) for i in range(10_000)]
    lines += ['  {"id": "spaced", "command": "true"} \r']
    lines += ['{"id": "n", "command": "echo 12345678901234567890"}']
    lines += ['{"id": "big", "command": "true", "priority": 99999999999999999999}']
    lines += [json.dumps({"id": f"after{i}", "command": "true"}) for i in range(5)]
    path = workdir / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = daemon.cli("enqueue", "--file", str(path))
    assert result.returncode == 2
    assert result.stdout.split() == [f"b{i}" for i in range(10_000)]
    assert result.stderr.splitlines() == [
        "queuectl: line 10003: field 'priority' is out of range: integers must be from "
        "-9223372036854775808 to 9223372036854775807",
        "queuectl: 10000 job(s) were enqueued before the error",
    ]
    assert daemon.client().status()["jobs"]["pending"] == 10_000


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"command": "true"} x', "invalid JSON at line 1 column 21: Extra data"),
        ('{"command": "a"}, {"command": "b"}', "invalid JSON at line 1 column 17: Extra data"),
        ('\ufeff{"command": "true"}', "invalid JSON at line 1 column 1: Unexpected UTF-8 BOM"),
        ('{"command": tru}', "invalid JSON at line 1 column 13: Expecting value"),
        ("[1, 2]", "a job must be a JSON object"),
    ],
)
def test_a_bad_line_of_a_file_is_named_as_json_names_it(daemon, workdir, line, error):
    path = workdir / "jobs.jsonl"
    path.write_text('{"command": "true"}\n' + line + "\n")
    result = daemon.cli("enqueue", "--file", str(path))
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"queuectl: line 2: {error}"), result.stderr
