"""The worker fleet: scaling, graceful and immediate stops, dead workers."""

from __future__ import annotations

import os
import signal
import time

import psutil

from tests.conftest import wait_for
from tests.test_lifecycle import wait_state


def worker_pids(daemon) -> list[int]:
    pids = []
    for child in psutil.Process(daemon.pid).children():
        try:
            if "queuectld.fleet.worker" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:
            pass  # a retired worker not yet reaped (a zombie) or already gone
    return pids


def test_scale_up_and_down(daemon):
    daemon.cli("worker", "start", "--count", "4")
    wait_for(lambda: len(worker_pids(daemon)) == 4, what="4 workers")
    daemon.cli("worker", "start", "--count", "1")
    wait_for(lambda: len(worker_pids(daemon)) == 1, what="1 worker")
    assert daemon.client().status()["workers"]["target"] == 1


def test_worker_stop_lets_the_running_job_finish(daemon, workdir):
    daemon.cli("enqueue", "--id", "finishing", "--command", f"sleep 2; touch {workdir}/done")
    daemon.cli("worker", "start", "--count", "2")
    wait_state(daemon, "finishing", "processing")
    daemon.cli("enqueue", "--id", "next", "--command", "true", "--delay", "0.5")
    result = daemon.cli("worker", "stop")
    assert result.returncode == 0
    assert "1 running job(s) finished first" in result.stdout
    assert (workdir / "done").exists()
    assert daemon.client().get_job("finishing")["state"] == "completed"
    assert worker_pids(daemon) == []
    time.sleep(1)
    assert daemon.client().get_job("next")["state"] == "pending"


def test_worker_stop_now_requeues_without_counting_an_attempt(daemon):
    daemon.cli("enqueue", "--id", "cut", "--command", "sleep 60")
    daemon.cli("worker", "start", "--count", "1")
    wait_state(daemon, "cut", "processing")
    result = daemon.cli("worker", "stop", "--now")
    assert result.returncode == 0, result.stderr
    job = daemon.client().get_job("cut")
    assert job["state"] == "pending"
    assert job["attempts"] == 0
    assert job["history"][0]["outcome"] == "interrupted"
    assert not job["history"][0]["counted"]


def test_a_killed_worker_is_replaced_and_its_job_retried(daemon):
    daemon.cli("enqueue", "--id", "victim", "--command", "sleep 30", "--max-retries", "1")
    daemon.cli("config", "set", "backoff-base", "1")
    daemon.cli("worker", "start", "--count", "1")
    wait_state(daemon, "victim", "processing")
    [worker] = worker_pids(daemon)
    job_pid = wait_for(lambda: daemon.client().get_job("victim")["history"][0]["pid"])
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: (p := worker_pids(daemon)) and p != [worker], what="a new worker")
    wait_for(
        lambda: (
            not psutil.pid_exists(job_pid)
            or psutil.Process(job_pid).status() == psutil.STATUS_ZOMBIE
        ),
        what="the dead worker's job to be killed",
    )
    job = wait_state(daemon, "victim", "processing")
    assert job["history"][0]["outcome"] == "worker_died"
    assert "SIGKILL" in job["history"][0]["error"]
    assert job["attempts"] == 1
    assert daemon.client().status()["workers"]["target"] == 1


def test_sigterm_to_the_daemon_waits_for_running_jobs(daemon, workdir):
    daemon.cli("enqueue", "--id", "last", "--command", f"sleep 1.5; touch {workdir}/ok")
    daemon.cli("worker", "start", "--count", "1")
    wait_state(daemon, "last", "processing")
    assert daemon.stop() == 0
    assert (workdir / "ok").exists()
    daemon.workers = 0
    daemon.start()
    assert daemon.client().get_job("last")["state"] == "completed"


def test_second_sigterm_stops_at_once_and_requeues(daemon):
    daemon.cli("enqueue", "--id", "stuck", "--command", "sleep 60")
    daemon.cli("worker", "start", "--count", "1")
    wait_state(daemon, "stuck", "processing")
    daemon.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    daemon.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert daemon.stop(timeout=15) == 0
    assert time.monotonic() - started < 10
    daemon.workers = 0
    daemon.start()
    job = daemon.client().get_job("stuck")
    assert job["state"] == "pending" and job["attempts"] == 0
