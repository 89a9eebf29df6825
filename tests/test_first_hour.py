"""What people who come from pueue or task-spooler type first, and what they get."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from protocol.errors import ErrorCode, ProtocolError
from tests.conftest import wait_for
from tests.test_cli import one_line_error


def idle_fleet(daemon, count: int) -> None:
    client = daemon.client()
    client.scale_workers(count)
    wait_for(lambda: client.status()["workers"]["idle"] == count, what=f"{count} idle workers")


# -- a bare command ----------------------------------------------------------------


def test_add_takes_a_command_and_quotes_its_words(daemon):
    assert daemon.cli("add", "--id", "q", "--", "echo", "a b", "it's").stdout == "q\n"
    assert daemon.client().get_job("q")["command"] == "echo 'a b' 'it'\"'\"'s'"
    # Options after the first word belong to the command, as with pueue and tsp.
    assert daemon.cli("add", "--id", "n", "echo", "-n", "x").stdout == "n\n"
    assert daemon.client().get_job("n")["command"] == "echo -n x"
    # One word is a shell command line as typed.
    daemon.cli("add", "--id", "sh", "--", "make && make test")
    assert daemon.client().get_job("sh")["command"] == "make && make test"


def test_add_runs_the_words_as_given(daemon, workdir):
    idle_fleet(daemon, 1)
    daemon.cli("add", "--id", "e", "--", "printf", "%s|", "a b", "c", cwd=str(workdir))
    assert daemon.cli("wait", "e").returncode == 0
    assert daemon.cli("logs", "e").stdout == "a b|c|"


def test_enqueue_takes_the_words_after_dashes_as_the_command(daemon):
    result = daemon.cli("enqueue", "--id", "d", "--priority", "3", "--", "echo", "a b")
    assert result.stdout == "d\n", result.stderr
    job = daemon.client().get_job("d")
    assert (job["command"], job["priority"]) == ("echo 'a b'", 3)
    # An option value that is literally `--` is a value, not the end of the options.
    assert daemon.cli("enqueue", "--id", "--", "-c", "true").stdout == "--\n"
    for args in (["--"], ["-c", "true", "--", "echo"], ['{"command":"x"}', "--", "echo"]):
        result = daemon.cli("enqueue", *args)
        assert result.returncode == 2, args
        one_line_error(result)


def test_a_command_given_as_json_says_how_to_run_it(daemon):
    result = daemon.cli("enqueue", "echo hi")
    assert result.returncode == 2
    assert one_line_error(result) == (
        "queuectl: job: invalid JSON at line 1 column 1: Expecting value; "
        "to run a shell command use: queuectl add -- 'echo hi'"
    )
    # Broken JSON is not taken for a command.
    assert "queuectl add" not in daemon.cli("enqueue", '{"command": "true",}').stderr


def test_enqueue_file_that_is_not_utf8_names_the_line(daemon, workdir):
    path = workdir / "jobs.jsonl"
    path.write_bytes(b'{"command": "true"}\n{"command": "echo caf\xe9"}\n')
    result = daemon.cli("enqueue", "--file", str(path))
    assert result.returncode == 2
    assert one_line_error(result) == ("queuectl: line 2: not valid UTF-8 (byte 0xe9 at column 22)")
    assert daemon.client().status()["jobs"]["pending"] == 0


# -- options next to JSON ------------------------------------------------------------


def test_options_fill_in_what_the_json_leaves_out(daemon):
    daemon.cli("enqueue", "-c", "true", "--id", "dep")
    result = daemon.cli(
        "enqueue",
        '{"id": "j", "command": "true", "priority": 9, "env": {"A": "json"}}',
        *("--priority", "1", "--max-retries", "0", "--queue", "q", "--timeout", "7"),
        *("--delay", "60", "--env", "A=option", "--env", "B=option", "--after", "dep"),
        *("--unique-key", "k"),
    )
    assert result.stdout == "j\n", result.stderr
    job = daemon.client().get_job("j")
    assert (job["priority"], job["max_retries"], job["queue"], job["timeout"]) == (9, 0, "q", 7)
    assert job["after"] == ["dep"] and job["unique_key"] == "k"
    assert job["run_at"] > job["created_at"]
    # --id names the job when the JSON does not.
    assert daemon.cli("enqueue", '{"command": "true"}', "--id", "named").stdout == "named\n"


def test_a_job_that_gives_its_time_keeps_it(daemon):
    daemon.cli(
        "enqueue",
        '{"id": "t", "command": "true", "run_at": "2030-01-01T00:00:00Z"}',
        "--delay",
        "5",
    )
    assert daemon.client().get_job("t")["run_at"] == "2030-01-01T00:00:00.000Z"


def test_options_apply_to_every_line_of_a_file(daemon, workdir):
    path = workdir / "jobs.jsonl"
    path.write_text('{"command": "true"}\n{"command": "true", "queue": "own"}\n')
    ids = daemon.cli_json("enqueue", "--file", str(path), "--queue", "batch", "--priority", "4")
    jobs = [daemon.client().get_job(i) for i in ids]
    assert [(j["queue"], j["priority"]) for j in jobs] == [("batch", 4), ("own", 4)]


def test_options_that_name_one_job_are_refused_for_several(daemon, workdir):
    path = workdir / "jobs.jsonl"
    path.write_text('{"command": "true"}\n{"command": "true"}\n')
    for args, text in (
        (["--file", str(path), "--id", "x"], "line 2: the file holds more than one job; --id"),
        (['[{"command": "a"}, {"command": "b"}]', "--unique-key", "k"], "--unique-key"),
    ):
        result = daemon.cli("enqueue", *args)
        assert result.returncode == 2, args
        assert text in one_line_error(result), args
    assert daemon.client().status()["jobs"]["pending"] == 0
    # One line is one job.
    path.write_text('{"command": "true"}\n')
    assert daemon.cli("enqueue", "--file", str(path), "--id", "only").stdout == "only\n"


def test_enqueue_help_says_options_are_defaults(daemon):
    text = " ".join(daemon.cli("enqueue", "--help").stdout.split())
    assert "with JSON or --file they are defaults for the fields each job leaves out" in text


# -- logs -f before the job starts ---------------------------------------------------


def _follow(daemon, job_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "queuectl_client.cli.main", "logs", "-f", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=daemon.env(),
    )


def test_logs_follow_waits_for_the_start_and_follows_every_run(daemon):
    daemon.cli(
        "add",
        *("--id", "flaky", "--max-retries", "1"),
        "--",
        'echo "try $QUEUECTL_ATTEMPT"; test "$QUEUECTL_ATTEMPT" -ge 2',
    )
    follower = _follow(daemon, "flaky")
    try:
        time.sleep(1.0)
        assert follower.poll() is None, follower.communicate()
        idle_fleet(daemon, 1)
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert (follower.returncode, out) == (0, "try 1\ntry 2\n"), err
    assert err == "--- run 2 ---\n"
    # Looking for the start is not an error the daemon would log each time.
    assert "request logs" not in daemon.log_text()


def test_logs_follow_exits_1_when_the_job_does_not_complete(daemon):
    daemon.cli("add", "--id", "dies", "--max-retries", "0", "--", "echo bye; exit 3")
    daemon.cli("add", "--id", "never", "--", "echo never")
    follower = _follow(daemon, "never")
    try:
        time.sleep(0.5)
        daemon.cli("cancel", "never")
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert (follower.returncode, out, err) == (1, "", "queuectl: job never ended canceled\n")
    idle_fleet(daemon, 1)
    result = daemon.cli("logs", "-f", "dies")
    assert (result.returncode, result.stdout) == (1, "bye\n")
    assert result.stderr == "queuectl: job dies ended dead\n"
    # A job that does not exist is an error at once, as without -f.
    assert "no job 'ghost'" in one_line_error(daemon.cli("logs", "-f", "ghost"))


# -- wait --exit-code ----------------------------------------------------------------


def test_wait_exit_code_passes_the_jobs_own_code_through(daemon):
    for job_id, command in (
        ("seven", "exit 7"),
        ("ok", "true"),
        ("four", "exit 4"),
        ("killed", "kill -KILL $$"),
    ):
        daemon.cli("add", "--id", job_id, "--max-retries", "0", "--", command)
    daemon.cli("add", "--id", "dropped", "--delay", "600", "--", "true")
    daemon.cli("cancel", "dropped")
    idle_fleet(daemon, 2)
    assert daemon.cli("wait", "seven", "ok", "four", "killed").returncode == 1
    for ids, code in (
        (["ok"], 0),
        (["seven"], 7),
        (["ok", "four", "seven"], 4),
        (["killed"], 128 + 9),
        (["dropped", "seven"], 1),
    ):
        result = daemon.cli("wait", "--exit-code", *ids)
        assert result.returncode == code, (ids, result.stderr)
    assert "first non-zero" in daemon.cli("wait", "--help").stdout


# -- several jobs at once --------------------------------------------------------------


def test_cancel_and_retry_take_several_ids_and_go_on_past_a_bad_one(daemon):
    for job_id in ("a", "b", "c"):
        daemon.cli("add", "--id", job_id, "--", "true")
    result = daemon.cli("cancel", "a", "ghost", "b")
    assert result.returncode == 1
    assert result.stdout == "a: canceled\nb: canceled\n"
    assert one_line_error(result) == "queuectl: not_found: no job 'ghost'"
    assert daemon.client().get_job("c")["state"] == "pending"
    records = daemon.cli_json("cancel", "c")
    assert records["id"] == "c"  # one id: its record, as before
    result = daemon.cli("retry", "a", "b", "--json")
    assert result.returncode == 0, result.stderr
    assert [job["state"] for job in json.loads(result.stdout)] == ["pending", "pending"]
    result = daemon.cli("retry", "a", "c")
    assert result.returncode == 1 and result.stdout == "c: pending\n"
    assert "cannot retry job 'a': it is pending" in one_line_error(result)


def test_cancel_all_with_filters_reports_the_count(daemon):
    for job_id, queue in (("e1", "emails"), ("e2", "emails"), ("w1", "web")):
        daemon.cli("add", "--id", job_id, "--queue", queue, "--", "true")
    daemon.cli("add", "--id", "later", "--queue", "emails", "--after", "e1", "--", "true")
    result = daemon.cli("cancel", "--all", "--queue", "emails", "--state", "pending")
    assert result.returncode == 0, result.stderr
    # `later` is canceled with e1, its dependency, and not counted twice.
    assert result.stdout.splitlines()[-1].startswith("canceled ")
    states = {j["id"]: j["state"] for j in daemon.client().list_jobs()}
    assert states == {"e1": "canceled", "e2": "canceled", "w1": "pending", "later": "canceled"}
    result = daemon.cli("retry", "--all", "--state", "canceled", "--queue", "emails")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "retried 3 job(s)"
    for args in (["cancel"], ["cancel", "--all", "x"], ["cancel", "x", "--queue", "q"]):
        assert daemon.cli(*args).returncode == 2, args
    assert "--all needs --state" in daemon.cli("retry", "--all").stderr


def test_list_takes_several_states(daemon):
    for job_id in ("p", "c1", "c2"):
        daemon.cli("add", "--id", job_id, "--", "true")
    daemon.cli("cancel", "c1", "c2")
    daemon.cli("add", "--id", "d", "--delay", "600", "--", "true")
    listed = daemon.cli_json("list", "--state", "canceled", "--state", "pending")
    assert [job["id"] for job in listed] == ["p", "c1", "c2", "d"]
    listed = daemon.cli_json("list", "--state", "canceled")
    assert [job["id"] for job in listed] == ["c1", "c2"]
    # On the wire: a string as before, or an array.
    client = daemon.client()
    assert len(client.call("list_jobs", state=["canceled"])["jobs"]) == 2
    for bad in ([], ["canceled", "bogus"], [1]):
        with pytest.raises(ProtocolError) as refused:
            client.call("list_jobs", state=bad)
        assert refused.value.code == ErrorCode.BAD_REQUEST


# -- why nothing runs ------------------------------------------------------------------

NO_WORKERS = "there are no workers (start some with `queuectl worker start`)"


def test_enqueue_says_when_nothing_will_start_the_job(daemon):
    result = daemon.cli("add", "--id", "x", "--", "true")
    assert result.stdout == "x\n"
    assert result.stderr == f"queuectl: note: no job starts yet: {NO_WORKERS}\n"
    result = daemon.cli("add", "--id", "y", "--json", "--", "true")
    assert json.loads(result.stdout) == ["y"] and "no workers" in result.stderr
    idle_fleet(daemon, 1)
    daemon.cli("queue", "pause", "q")
    daemon.cli("worker", "drain")
    result = daemon.cli("enqueue", '{"command": "true"}', "--queue", "q")
    assert result.stderr == (
        "queuectl: note: no job starts yet: the fleet is drained (`queuectl worker resume` "
        "ends it); queue q is paused (`queuectl queue resume q` resumes it)\n"
    )
    assert "note:    queue q is paused" in daemon.cli("status").stdout
    daemon.cli("worker", "resume")
    assert daemon.cli("add", "--", "true").stderr == ""


def test_show_and_status_say_why_a_job_waits(daemon):
    daemon.cli("add", "--id", "dep", "--", "true")
    daemon.cli("add", "--id", "later", "--delay", "600", "--after", "dep", "--", "true")
    shown = daemon.cli("show", "later").stdout
    [line] = [line for line in shown.splitlines() if line.startswith("waiting:")]
    assert "it is scheduled for " in line and "it waits for 1 of its dependencies (dep)" in line
    assert line.endswith(NO_WORKERS)
    assert "waiting" not in daemon.cli_json("show", "later")
    status = daemon.cli("status").stdout
    assert f"note:    no job starts: {NO_WORKERS}; 2 job(s) waiting" in status
    assert "note:" not in daemon.cli("status", "--json").stdout
    idle_fleet(daemon, 1)
    daemon.cli("wait", "dep")
    assert "note:" not in daemon.cli("status").stdout
    assert "waiting:" not in daemon.cli("show", "dep").stdout


# -- labels that say what they mean ------------------------------------------------------


def test_a_job_waiting_for_its_retry_reads_as_retrying(daemon):
    daemon.cli("add", "--id", "flaky", "--max-retries", "2", "--", "exit 3")
    daemon.cli("config", "set", "backoff-base", "600")
    idle_fleet(daemon, 1)
    wait_for(lambda: daemon.client().get_job("flaky")["state"] == "failed", what="a failure")
    [row] = daemon.cli("list").stdout.splitlines()[1:]
    assert row.split()[1:3] == ["retrying", "at"] and row.split()[4] == "1/3"
    assert "failed (retrying at " in daemon.cli("show", "flaky").stdout
    assert "retrying 1" in daemon.cli("status").stdout
    # The protocol's name stays, for filters and scripts.
    assert [j["id"] for j in daemon.cli_json("list", "--state", "failed")] == ["flaky"]


def test_tries_of_a_running_job_count_the_attempt_under_way(daemon):
    idle_fleet(daemon, 1)
    daemon.cli("add", "--id", "slow", "--", "sleep 30")
    client = daemon.client()
    wait_for(lambda: client.get_job("slow")["started_at"] is not None, what="the start")
    [worker] = client.status(processes=True)["workers"]["list"]
    in_top = f"{worker['job']['attempt']}/{worker['job']['max_attempts']}"
    [row] = daemon.cli("list").stdout.splitlines()[1:]
    assert row.split()[2] == in_top == "1/4"
    assert "tries:      1 of 4" in daemon.cli("show", "slow").stdout
    daemon.cli("cancel", "slow")


def test_arguments_that_are_not_utf8_are_one_line_errors(daemon):
    for args in (["add", "--", "echo \udcff"], ["enqueue", '{"command": "\udcff"}']):
        result = subprocess.run(
            [sys.executable, "-m", "queuectl_client.cli.main", *args],
            capture_output=True,
            env=daemon.env(),
            timeout=60,
        )
        assert result.returncode == 2, args
        # One line that names what is wrong (the field, where the client can tell).
        assert result.stderr.count(b"\n") == 1 and b"not valid UTF-8" in result.stderr, args


def test_a_stopped_fleet_is_named_after_a_restart_too(daemon_factory):
    daemon = daemon_factory(workers=None)
    assert daemon.cli("worker", "stop").returncode == 0
    daemon.restart()
    result = daemon.cli("add", "--id", "held", "--", "true")
    assert result.stdout == "held\n" and NO_WORKERS in result.stderr
    assert f"waiting:    {NO_WORKERS}" in daemon.cli("show", "held").stdout
