"""Jobs through a real daemon: retries, DLQ, restarts, priorities, delays, timeouts."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from datetime import datetime

import psutil

from tests.conftest import wait_for


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def wait_state(daemon, job_id: str, states, timeout: float = 30) -> dict:
    client = daemon.client()
    states = {states} if isinstance(states, str) else set(states)
    try:
        return wait_for(
            lambda: (j := client.get_job(job_id))["state"] in states and j,
            timeout,
            0.05,
            f"job {job_id} to reach {states}",
        )
    finally:
        client.close()


def test_always_failing_job_backs_off_2_4_8_then_dead_survives_restart_and_retries(daemon, workdir):
    marker = workdir / "fixed"
    job_id = daemon.cli("enqueue", f'{{"id":"F1","command":"test -f {marker}"}}').stdout.strip()
    assert job_id == "F1"
    daemon.cli("worker", "start", "--count", "1")
    job = wait_state(daemon, "F1", "dead", timeout=40)
    assert job["attempts"] == 4
    runs = job["history"]
    assert [r["outcome"] for r in runs] == ["failed"] * 4
    assert all(r["exit_code"] == 1 for r in runs)
    waits = [ts(runs[i + 1]["started_at"]) - ts(runs[i]["finished_at"]) for i in range(3)]
    for got, expected in zip(waits, (2, 4, 8), strict=True):
        assert expected - 0.05 <= got <= expected + 1.5, waits
    assert job["last_error"] == "exit code 1"

    daemon.workers = None  # come back with the persisted fleet size, not an override
    daemon.restart()
    assert daemon.client().status()["workers"]["target"] == 1
    dead = daemon.cli_json("dlq", "list")
    assert [j["id"] for j in dead] == ["F1"]
    assert daemon.cli_json("status")["jobs"]["dead"] == 1

    marker.touch()
    result = daemon.cli("dlq", "retry", "F1")
    assert result.returncode == 0, result.stderr
    assert daemon.cli("wait", "F1", "--timeout", "20").returncode == 0
    job = daemon.client().get_job("F1")
    assert job["state"] == "completed"
    assert len(job["history"]) == 5


def test_three_sleep_jobs_on_three_workers_run_in_parallel(daemon):
    ids = [
        daemon.cli("enqueue", "--command", "sleep 6", "--id", f"C{i}").stdout.strip()
        for i in (1, 2, 3)
    ]
    started = time.monotonic()
    daemon.cli("worker", "start", "--count", "3")
    assert daemon.cli("wait", *ids, "--timeout", "30").returncode == 0
    elapsed = time.monotonic() - started
    assert elapsed < 11, f"took {elapsed:.1f} s: the jobs did not run in parallel"
    workers = {daemon.client().get_job(i)["history"][0]["worker"] for i in ids}
    assert len(workers) == 3


def test_priority_orders_due_jobs(daemon, workdir):
    order = workdir / "order"
    for job_id, priority in (("low", 0), ("high", 10), ("mid", 5), ("low2", 0)):
        daemon.cli(
            "enqueue",
            "--id",
            job_id,
            "--priority",
            str(priority),
            "--command",
            f"echo {job_id} >> {order}",
        )
    daemon.cli("worker", "start", "--count", "1")
    assert daemon.cli("wait", "low", "high", "mid", "low2").returncode == 0
    assert order.read_text().split() == ["high", "mid", "low", "low2"]


def test_delayed_job_does_not_start_early(daemon):
    daemon.cli("worker", "start", "--count", "2")
    daemon.cli("enqueue", "--id", "later", "--delay", "2", "--command", "true")
    time.sleep(1.0)
    assert daemon.client().get_job("later")["state"] == "pending"
    assert daemon.cli("wait", "later", "--timeout", "10").returncode == 0
    job = daemon.client().get_job("later")
    assert ts(job["history"][0]["started_at"]) - ts(job["created_at"]) >= 2.0


def test_run_at_in_the_past_runs_now(daemon):
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli("enqueue", '{"id":"past","command":"true","run_at":"2001-01-01T00:00:00Z"}')
    assert daemon.cli("wait", "past", "--timeout", "10").returncode == 0


def test_timeout_kills_the_whole_process_group_including_grandchildren(daemon, workdir):
    pidfile = workdir / "grandchild.pid"
    # The grandchild ignores SIGTERM, so only the SIGKILL after the grace period ends it.
    command = f"sh -c 'trap \"\" TERM; echo $$ > {pidfile}; while :; do sleep 1; done' & wait"
    daemon.cli("config", "set", "kill-grace", "1")
    daemon.cli(
        "enqueue", "--id", "slow", "--timeout", "1", "--max-retries", "0", "--command", command
    )
    daemon.cli("worker", "start", "--count", "1")
    job = wait_state(daemon, "slow", "dead", timeout=20)
    assert job["history"][0]["outcome"] == "timeout"
    assert job["last_error"] == "timed out after 1 s"
    grandchild = int(pidfile.read_text())
    assert (
        not psutil.pid_exists(grandchild)
        or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
    )


def test_output_is_captured_per_run(daemon, workdir):
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli(
        "enqueue",
        "--id",
        "talk",
        "--command",
        "echo out; echo err >&2; echo attempt=$QUEUECTL_ATTEMPT",
    )
    assert daemon.cli("wait", "talk").returncode == 0
    logs = daemon.cli("logs", "talk")
    assert logs.returncode == 0
    assert logs.stdout.split("\n")[:3] == ["out", "err", "attempt=1"]


def test_logs_of_a_job_that_has_not_run(daemon):
    daemon.cli("enqueue", "--id", "idle", "--command", "echo hi")
    result = daemon.cli("logs", "idle")
    assert result.returncode == 1
    assert "has not run yet (it is pending)" in result.stderr
    assert daemon.cli("logs", "idle", "--run", "3").returncode == 1


def test_log_size_is_capped(daemon):
    daemon.cli("config", "set", "log-max-bytes", "1000")
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli("enqueue", "--id", "loud", "--command", "yes | head -c 100000")
    assert daemon.cli("wait", "loud").returncode == 0
    out = daemon.cli("logs", "loud").stdout
    assert out.startswith("y\ny\n")
    assert "output truncated at 1000 bytes" in out
    assert len(out) < 1100


def test_logs_follow_streams_a_running_job(daemon):
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli(
        "enqueue", "--id", "stream", "--command", "for i in 1 2 3; do echo line$i; sleep 0.4; done"
    )
    wait_state(daemon, "stream", "processing")
    result = daemon.cli("logs", "stream", "-f", timeout=30)
    assert result.stdout.split() == ["line1", "line2", "line3"]


def test_job_gets_submitters_cwd_environment_and_its_own(daemon, workdir):
    out = workdir / "env.txt"
    env = {**daemon.env(), "FROM_CLIENT": "yes"}
    import subprocess
    import sys

    subprocess.run(
        [
            sys.executable,
            "-m",
            "queuectl_client.cli.main",
            "enqueue",
            "--id",
            "envjob",
            "--env",
            "EXTRA=1",
            "--command",
            f"pwd > {out}; echo $FROM_CLIENT $EXTRA $QUEUECTL_JOB_ID $QUEUECTL_WORKER >> {out}; "
            "cat /proc/self/fd/0 | wc -c >> " + str(out),
        ],
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    daemon.cli("worker", "start", "--count", "1")
    assert daemon.cli("wait", "envjob").returncode == 0
    lines = out.read_text().split("\n")
    assert lines[0] == str(workdir)
    assert lines[1].split() == [
        "yes",
        "1",
        "envjob",
        str(daemon.client().get_job("envjob")["history"][0]["worker"]),
    ]
    assert lines[2].strip() == "0"  # stdin is /dev/null


def worker_pids(daemon) -> list[int]:
    with daemon.client() as client:
        return [worker["pid"] for worker in client.status(processes=True)["workers"]["list"]]


def test_missing_working_directory_is_a_spawn_error(daemon, workdir):
    gone = workdir / "gone"
    gone.mkdir()
    daemon.cli(
        "enqueue", "--id", "nowhere", "--max-retries", "0", "--command", "true", cwd=str(gone)
    )
    gone.rmdir()
    daemon.cli("worker", "start", "--count", "1")
    job = wait_state(daemon, "nowhere", "dead")
    assert job["history"][0]["outcome"] == "spawn_error"
    assert job["last_error"] == f"cannot start: [Errno 2] No such file or directory: '{gone}'"


def test_a_job_that_cannot_start_says_why_and_leaves_its_worker_alive(daemon, workdir):
    """Each failure to start is the job's, with the operating system's reason: a
    working directory that is a file; and, stored before enqueue refused them, a
    command with a NUL byte (which exec cannot take) and a relative directory."""
    not_a_dir = workdir / "file"
    not_a_dir.write_text("")
    with daemon.client() as client:
        client.enqueue({"id": "filecwd", "command": "true", "max_retries": 0}, cwd=str(not_a_dir))
        client.enqueue({"id": "stored", "command": "true", "max_retries": 0})
        client.enqueue({"id": "relative", "command": "true", "max_retries": 0}, cwd="/marker")
    daemon.stop()
    with sqlite3.connect(daemon.home / "queuectl.db") as db:
        db.execute("UPDATE jobs SET command = ? WHERE id = 'stored'", ("true\0 && echo never",))
        db.execute("UPDATE environments SET cwd = 'work' WHERE cwd = '/marker'")
    daemon.start()
    daemon.cli("worker", "start", "--count", "1")
    [worker] = wait_for(lambda: worker_pids(daemon), what="the worker")
    filecwd = wait_state(daemon, "filecwd", "dead")
    assert filecwd["history"][0]["outcome"] == "spawn_error"
    assert filecwd["last_error"] == f"cannot start: [Errno 20] Not a directory: '{not_a_dir}'"
    stored = wait_state(daemon, "stored", "dead")
    assert stored["history"][0]["outcome"] == "spawn_error"
    assert stored["last_error"] == "cannot start: embedded null byte"
    relative = wait_state(daemon, "relative", "dead")
    assert relative["last_error"] == (
        "cannot start: working directory 'work' is not an absolute path"
    )
    assert worker_pids(daemon) == [worker]
    daemon.cli("enqueue", "--id", "after", "--command", "true")
    assert wait_state(daemon, "after", "completed")["history"][0]["worker"] == 1


def test_jobs_start_with_default_signal_dispositions_and_no_stray_descriptors(daemon):
    """Nothing the worker set for itself leaks into a job: ignored signals survive
    an exec, and so would an inheritable descriptor such as its supervisor socket."""
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli(
        "enqueue",
        "--id",
        "clean",
        "--command",
        "grep SigIgn /proc/self/status; ls /proc/self/fd | sort -n | tr '\\n' ' '",
    )
    assert daemon.cli("wait", "clean").returncode == 0
    ignored_line, fds = daemon.cli("logs", "clean").stdout.splitlines()[:2]
    ignored = int(ignored_line.split()[1], 16)
    for number in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM):
        assert not ignored & (1 << (number - 1)), (number, ignored_line)
    # stdin, stdout, stderr, and the descriptor ls opened to list them
    assert fds.split() == ["0", "1", "2", "3"], fds


def test_each_run_records_its_process_short_or_long(daemon, workdir):
    daemon.cli("worker", "start", "--count", "1")
    with daemon.client() as client:
        [short] = client.enqueue({"command": "true"})
        assert client.wait([short], timeout=10)["done"]
        [run] = client.get_job(short)["history"]
        assert isinstance(run["pid"], int) and run["pid"] > 0, run
        [long] = client.enqueue({"command": "sleep 5"})
        run = wait_for(
            lambda: (h := client.get_job(long)["history"]) and h[-1]["pid"] and h[-1],
            5,
            0.02,
            "the long run's pid in the store",
        )
        assert "sleep" in " ".join(psutil.Process(run["pid"]).cmdline())
        client.cancel(long)


def test_signal_death_is_recorded_by_name(daemon):
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli("enqueue", "--id", "sig", "--max-retries", "0", "--command", "kill -KILL $$")
    job = wait_state(daemon, "sig", "dead")
    assert job["history"][0]["signal"] == "SIGKILL"
    assert job["last_error"] == "killed by SIGKILL"


def test_cancel_pending_and_running_jobs_never_retries(daemon):
    daemon.cli("enqueue", "--id", "waiting", "--command", "true")
    assert daemon.cli("cancel", "waiting").stdout.strip() == "waiting: canceled"
    daemon.cli("enqueue", "--id", "busy", "--command", "sleep 30")
    daemon.cli("worker", "start", "--count", "1")
    wait_state(daemon, "busy", "processing")
    assert daemon.cli("cancel", "busy").stdout.strip() == "busy: canceled"
    job = daemon.client().get_job("busy")
    assert job["history"][-1]["outcome"] == "canceled"
    time.sleep(0.5)
    assert daemon.client().get_job("busy")["state"] == "canceled"
    again = daemon.cli("cancel", "busy")
    assert again.returncode == 1 and "canceled" in again.stderr
    wait_result = daemon.cli("wait", "busy", "waiting")
    assert wait_result.returncode == 1


def test_processing_jobs_of_a_killed_daemon_are_recovered(daemon_factory, workdir):
    daemon = daemon_factory(workers=1)
    daemon.cli("enqueue", "--id", "long", "--command", f"sleep 1000; touch {workdir}/x")
    wait_state(daemon, "long", "processing")
    job_pid = daemon.client().get_job("long")["history"][0]["pid"]
    wait_for(lambda: daemon.client().get_job("long")["history"][0]["pid"], what="pid recorded")
    job_pid = daemon.client().get_job("long")["history"][0]["pid"]
    daemon.kill9()
    daemon.workers = 0
    daemon.start()
    job = daemon.client().get_job("long")
    assert job["state"] == "pending"
    assert job["attempts"] == 0
    assert job["history"][0]["outcome"] == "interrupted"
    wait_for(
        lambda: (
            not psutil.pid_exists(job_pid)
            or psutil.Process(job_pid).status() == psutil.STATUS_ZOMBIE
        ),
        what="the orphaned job to be gone",
    )


def test_status_json_shape(daemon):
    daemon.cli("worker", "start", "--count", "2")
    wait_for(lambda: daemon.client().status()["workers"]["idle"] == 2, what="2 idle workers")
    status = daemon.cli_json("status")
    assert set(status["jobs"]) == {
        "pending",
        "processing",
        "completed",
        "failed",
        "dead",
        "canceled",
    }
    assert status["workers"]["target"] == 2
    assert status["workers"]["busy"] == 0
    assert status["daemon"]["pid"] == daemon.pid
    assert status["daemon"]["uptime"] >= 0
    assert os.path.samefile(status["daemon"]["home"], daemon.home)
