"""The worker fleet: scaling, graceful and immediate stops, dead workers."""

from __future__ import annotations

import os
import shutil
import signal
import time

import psutil
import pytest

from queuectld.fleet.supervisor import HALT_AFTER_BOOT_FAILURES
from tests.conftest import ROOT, wait_for
from tests.test_bounds import store_raw_setting
from tests.test_cli import one_line_error
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


# -- bounds ---------------------------------------------------------------------


def test_the_fleet_has_a_maximum(daemon_factory):
    daemon = daemon_factory(workers=0, extra=("--max-workers", "3"))
    for args in (("config", "set", "workers", "1000000"), ("worker", "start", "--count", "4")):
        result = daemon.cli(*args)
        assert result.returncode == 1
        assert "more than the fleet maximum of 3 (raise it with queuectld --max-workers)" in (
            one_line_error(result)
        )
    assert daemon.client().status()["workers"]["target"] == 0
    assert daemon.cli_json("worker", "start", "--count", "3") == {"target": 3}
    assert daemon.client().status()["workers"]["max"] == 3


def test_queuectld_refuses_more_workers_than_the_maximum(daemon_factory):
    daemon = daemon_factory(workers=1000000, start=False)
    daemon.start(wait=False)
    assert daemon.proc.wait(30) == 2
    lines = daemon.log_text().strip().splitlines()
    assert lines == [
        "queuectld: --workers: 1000000 workers is more than the fleet maximum of "
        f"{max(16, 8 * (os.cpu_count() or 1))} (raise it with queuectld --max-workers)"
    ]


def test_a_stored_fleet_over_the_maximum_is_cut_down_once(daemon_factory):
    daemon = daemon_factory(workers=None, extra=("--max-workers", "2"), start=False)
    daemon.start()
    store_raw_setting(daemon, "workers", "5000")
    wait_for(lambda: len(worker_pids(daemon)) == 2, what="2 workers")
    assert daemon.client().status()["workers"]["target"] == 2
    assert daemon.log_text().count("the stored fleet size 5000 is more than") == 1
    assert daemon.cli("config", "get", "workers").stdout.strip() == (
        "2 (from the fleet maximum; the stored value is larger)"
    )


def test_config_says_the_fleet_size_in_force_and_where_it_came_from(daemon_factory):
    daemon = daemon_factory(workers=2)
    assert daemon.client().status()["workers"]["target"] == 2
    assert daemon.cli("config", "get", "workers").stdout.strip() == "2 (from --workers)"
    assert daemon.cli_json("config", "get", "workers") == {
        "key": "workers",
        "value": 2,
        "scope": "daemon",
        "source": "--workers",
    }
    listed = daemon.cli_json("config", "list")["workers"]
    assert listed["value"] == 2 and listed["source"] == "--workers"
    daemon.cli("worker", "start", "--count", "3")
    assert daemon.cli("config", "get", "workers").stdout.strip() == "3"


def test_worker_start_without_a_count_never_shrinks(daemon):
    daemon.cli("worker", "start", "--count", "4")
    assert daemon.cli_json("worker", "start") == {"target": 4}
    daemon.cli("worker", "stop")
    assert daemon.cli_json("worker", "start") == {"target": 1}  # stopped: the default
    daemon.cli("config", "set", "workers", "3")
    daemon.workers = 0
    daemon.restart()  # --workers 0 over a stored 3
    assert daemon.cli_json("worker", "start") == {"target": 3}


@pytest.fixture
def breakable(daemon_factory, home):
    """A daemon running its own copy of the code, whose worker module a test can
    remove: a worker then dies at boot, as one of a broken installation does."""
    code = home / "code"
    for package in ("protocol", "queuectld", "queuectl_client"):
        shutil.copytree(ROOT / package, code / package, ignore=shutil.ignore_patterns("*.pyc"))
    daemon = daemon_factory(workers=0, start=False)
    plain_env = daemon.env
    daemon.env = lambda: {**plain_env(), "PYTHONPATH": str(code)}
    daemon.start()
    return daemon, code / "queuectld" / "fleet" / "worker.py"


def test_workers_dying_at_boot_halt_the_fleet_until_it_is_scaled(breakable):
    daemon, module = breakable
    saved = module.read_text()
    module.unlink()
    daemon.cli("worker", "start", "--count", "2")
    halted = wait_for(lambda: daemon.client().status()["workers"]["halted"], what="a halt")
    assert "5 workers in a row died before they were ready" in halted
    time.sleep(0.5)
    spawned = daemon.log_text().count("spawned")
    # The fifth failure halts; a second worker still booting then may be a sixth.
    assert HALT_AFTER_BOOT_FAILURES <= spawned <= HALT_AFTER_BOOT_FAILURES + 1
    time.sleep(1)
    log = daemon.log_text()
    assert log.count("spawned") == spawned
    assert log.count("fleet halted") == 1
    assert "halted: 5 workers in a row" in daemon.cli("status").stdout
    module.write_text(saved)
    assert daemon.cli_json("worker", "start") == {"target": 2}
    wait_for(lambda: daemon.client().status()["workers"]["idle"] == 2, what="2 idle workers")
    assert daemon.client().status()["workers"]["halted"] is None
