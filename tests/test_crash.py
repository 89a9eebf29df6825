"""Crashes: kill -9 of the daemon, of its workers, of everything; acknowledged
jobs survive, no job process outlives its supervisor, nothing runs twice at once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter

import psutil

from protocol.errors import ProtocolError
from queuectl_client import DaemonUnreachable
from queuectld.fleet.survivors import RUN_MARKER, kill_run
from queuectld.store import NewJob
from queuectld.store.runner import StoreRunner
from queuectld.store.sqlite.store import SQLiteStore
from tests.conftest import wait_for
from tests.proctools import alive, read_pids, worker_pids


def blocking_job(workdir, job_id: str) -> dict:
    """A job with grandchildren that blocks until `go` exists, then records its completion.

    Every process of the job writes its pid to `pids`, so the test can check each
    one; `done` gets one line per completed run.
    """
    pids, go, done = workdir / "pids", workdir / "go", workdir / "done"
    command = (
        f"echo $$ >> {pids}; "
        f"sh -c 'echo $$ >> {pids}; exec sleep 300' & "
        f"( trap '' TERM; sh -c 'echo $$ >> {pids}; sleep 300' ) & "
        f"while [ ! -f {go} ]; do sleep 0.05; done; "
        f"echo $QUEUECTL_JOB_ID >> {done}; kill $(jobs -p) 2>/dev/null; exit 0"
    )
    return {"id": job_id, "command": command, "max_retries": 2}


def wait_job_processes(workdir, count: int) -> list[int]:
    # 3 pids per job: the shell and two grandchildren.
    return wait_for(
        lambda: len(p := read_pids(workdir / "pids")) >= 3 * count and p,
        what=f"{count} jobs to start their processes",
    )


def completions(workdir) -> Counter:
    try:
        return Counter((workdir / "done").read_text().split())
    except FileNotFoundError:
        return Counter()


def test_kill9_of_the_daemon_takes_its_running_jobs_and_grandchildren_down(daemon_factory, workdir):
    daemon = daemon_factory(workers=3)  # two busy workers and an idle one
    ids = ["k1", "k2"]
    with daemon.client() as client:
        client.enqueue(*(blocking_job(workdir, i) for i in ids))
    job_pids = wait_job_processes(workdir, 2)
    for job_id in ids:
        wait_for(lambda j=job_id: daemon.client().get_job(j)["history"][0]["pid"])
    wait_for(lambda: len(worker_pids(daemon.pid)) == 3, what="3 workers")
    daemon.remember_descendants()
    old = set(daemon.known) | set(job_pids)
    assert len(old) >= 1 + 3 + 6
    daemon.kill9()
    # The workers die with their parent and take their jobs' process groups along.
    wait_for(
        lambda: not [p for p in old if alive(p)],
        timeout=5,
        what="every process of the killed daemon to die",
    )
    (workdir / "go").touch()
    daemon.start()
    with daemon.client() as client:
        assert client.wait(ids, timeout=30)["done"]
        for job_id in ids:
            job = client.get_job(job_id)
            assert job["state"] == "completed"
            assert [r["outcome"] for r in job["history"]] == ["interrupted", "completed"]
            assert job["attempts"] == 1  # the interrupted run is recorded, not counted
    assert completions(workdir) == Counter({"k1": 1, "k2": 1})


def test_jobs_orphaned_by_a_dead_daemon_and_dead_workers_are_killed_at_restart(
    daemon_factory, workdir
):
    """The worst case: daemon and workers die at once, the jobs keep running.

    The restarted daemon finds them by recorded pid and start time, and by the run
    marker in their environment (the grandchildren), and kills them before it
    requeues their jobs.
    """
    daemon = daemon_factory(workers=2)
    ids = ["o1", "o2"]
    with daemon.client() as client:
        client.enqueue(*(blocking_job(workdir, i) for i in ids))
    job_pids = wait_job_processes(workdir, 2)
    for job_id in ids:
        wait_for(lambda j=job_id: daemon.client().get_job(j)["history"][0]["pid"])
    workers = worker_pids(daemon.pid)
    assert len(workers) == 2
    daemon.remember_descendants()
    # Freeze the daemon so it cannot react, kill its workers, then kill it.
    os.kill(daemon.pid, signal.SIGSTOP)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    daemon.kill9()
    time.sleep(0.5)
    survivors = [p for p in job_pids if alive(p)]
    assert len(survivors) == len(job_pids), "the jobs should outlive their dead workers"

    started = time.monotonic()
    daemon.start()
    assert not [p for p in job_pids if alive(p)], "recovery must kill the orphans before serving"
    elapsed = time.monotonic() - started
    with daemon.client() as client:
        for job_id in ids:
            job = client.get_job(job_id)
            assert job["state"] == "pending"
            assert job["history"][0]["outcome"] == "interrupted"
        (workdir / "go").touch()
        client.scale_workers(2)
        assert client.wait(ids, timeout=30)["done"]
        assert all(client.get_job(i)["state"] == "completed" for i in ids)
    assert completions(workdir) == Counter({"o1": 1, "o2": 1})
    assert re.search(r"killed \d+ process\(es\) of job o1 left running", daemon.log_text())
    assert elapsed < 15


def test_recovery_never_kills_a_process_that_reused_a_recorded_pid(daemon_factory, home):
    daemon = daemon_factory(workers=0)
    daemon.stop()
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        store = SQLiteStore(home / "queuectl.db")
        now = time.time()
        store.begin()
        store.add_jobs([_new_job("reused")], now)
        [claimed] = store.claim_due_jobs(now, 1, (home / "daemon.id").read_text().strip())
        real_start = psutil.Process(bystander.pid).create_time()
        # Recorded: the same pid, but a process that started 100 s earlier.
        store.record_run_process(claimed.seq, claimed.run, 1, bystander.pid, real_start - 100, now)
        store.commit()
        store.close()
        daemon.start()
        job = daemon.client().get_job("reused")
        assert job["state"] == "pending"
        assert job["history"][0]["outcome"] == "interrupted"
        time.sleep(0.3)
        assert bystander.poll() is None, "a process with a reused pid was killed"
    finally:
        bystander.kill()
        bystander.wait()


def test_restart_recovers_only_its_own_runs(daemon_factory, home):
    """A run another live daemon owns is left to it, however this daemon starts."""
    daemon = daemon_factory(workers=0)
    daemon.stop()
    store = SQLiteStore(home / "queuectl.db")
    now = time.time()
    store.begin()
    store.add_jobs([_new_job("theirs"), _new_job("ours")], now)
    store.register_daemon("other", "elsewhere", 1, now + 3600)  # beating well into the test
    [theirs] = store.claim_due_jobs(now, 1, "other")
    [ours] = store.claim_due_jobs(now, 1, (home / "daemon.id").read_text().strip())
    store.commit()
    store.close()
    assert (theirs.id, ours.id) == ("theirs", "ours")
    daemon.start()
    client = daemon.client()
    assert client.get_job("ours")["history"][0]["outcome"] == "interrupted"
    theirs_now = client.get_job("theirs")
    assert theirs_now["state"] == "processing"
    assert theirs_now["history"][0]["outcome"] == "running"


def test_restart_recovers_the_ownerless_runs_of_an_upgraded_store(daemon_factory, home):
    """Runs claimed before runs had owners (migration 6 leaves them NULL) are this
    home's daemon's: the first start after the upgrade requeues them."""
    daemon = daemon_factory(workers=0)
    daemon.stop()
    store = SQLiteStore(home / "queuectl.db")
    now = time.time()
    store.begin()
    store.add_jobs([_new_job("before-upgrade")], now)
    [claimed] = store.claim_due_jobs(now, 1, "ignored")
    store.conn.execute("UPDATE runs SET owner = NULL WHERE job_seq = ?", (claimed.seq,))
    store.commit()
    store.close()
    daemon.start()
    job = daemon.client().get_job("before-upgrade")
    assert job["state"] == "pending"
    assert job["history"][0]["outcome"] == "interrupted"


def test_run_marker_finds_a_process_that_left_the_group_and_nothing_else(tmp_path):
    marker = "feedface:7:1"
    env = {**os.environ, RUN_MARKER: marker}
    # Escaped into its own session, its pid never recorded: only the marker finds it.
    escaped = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    other = subprocess.Popen(
        ["sleep", "300"], env={**os.environ, RUN_MARKER: "feedface:7:2"}, start_new_session=True
    )
    try:
        since = time.time() - 5
        killed = kill_run(marker, None, None, since, wait=5)
        assert killed == [escaped.pid]
        assert escaped.wait(5) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for proc in (escaped, other):
            proc.kill()
            proc.wait()


def test_kill9_of_one_worker_mid_job_retries_the_job_and_keeps_the_fleet(daemon, workdir):
    daemon.cli("config", "set", "backoff-base", "1")
    with daemon.client() as client:
        client.scale_workers(3)
        wait_for(lambda: client.status()["workers"]["idle"] == 3, what="3 idle workers")
        client.enqueue(blocking_job(workdir, "w1"))
    job_pids = wait_job_processes(workdir, 1)
    job = wait_for(lambda: (j := daemon.client().get_job("w1"))["history"][0]["pid"] and j)
    running = daemon.client().status()["workers"]["running"]
    [victim] = [r["pid"] for r in running if r["job"] == "w1"]
    before = set(worker_pids(daemon.pid))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not [p for p in job_pids if alive(p)], timeout=5, what="the job to die")
    with daemon.client() as client:
        wait_for(
            lambda: (
                len(set(worker_pids(daemon.pid)) - before) == 1
                and client.status()["workers"]["alive"] == 3
            ),
            what="a replacement worker",
        )
        assert client.status()["workers"]["target"] == 3
        job = client.get_job("w1")
        assert job["history"][0]["outcome"] == "worker_died"
        assert "SIGKILL" in job["history"][0]["error"]
        assert job["attempts"] == 1
        (workdir / "go").touch()
        assert client.wait(["w1"], timeout=30)["done"]
        assert client.get_job("w1")["state"] == "completed"
    assert completions(workdir) == Counter({"w1": 1})


def test_every_acknowledged_enqueue_survives_kill9(daemon_factory):
    daemon = daemon_factory(workers=0)
    acked: list[list[str]] = [[] for _ in range(8)]
    stop = threading.Event()

    def submit(n: int) -> None:
        client = daemon.client()
        i = 0
        try:
            while not stop.is_set():
                job_id = f"a{n}-{i}"
                client.enqueue({"id": job_id, "command": "true"})
                acked[n].append(job_id)  # only after the daemon said yes
                i += 1
        except (DaemonUnreachable, ProtocolError, OSError):
            pass  # the kill cut this request off: it was never acknowledged
        finally:
            client.close()

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    daemon.kill9()  # while requests are in flight
    stop.set()
    for thread in threads:
        thread.join(10)
    total = sum(len(ids) for ids in acked)
    assert total > 200, f"only {total} enqueues were acknowledged before the kill"
    daemon.start()
    with daemon.client() as client:
        stored = {job["id"] for job in client.list_jobs()}
    lost = [i for ids in acked for i in ids if i not in stored]
    assert not lost, f"{len(lost)} of {total} acknowledged jobs were lost, e.g. {lost[:5]}"


def test_wal_full_sync_and_one_commit_shared_by_concurrent_calls(tmp_path):
    store = SQLiteStore(tmp_path / "q.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL

    async def burst() -> StoreRunner:
        runner = StoreRunner(store, asyncio.get_running_loop())
        runner.start()
        calls = [
            runner.call(type(store).add_jobs, [_new_job(f"g{i}")], time.time()) for i in range(500)
        ]
        await asyncio.gather(*calls)
        return runner

    runner = asyncio.run(burst())
    runner.stop()
    assert runner.calls == 500
    # Calls that arrive together share a transaction, so far fewer commits (fsyncs).
    assert runner.batches <= 50, runner.batches


def _new_job(job_id: str) -> NewJob:
    return NewJob(
        id=job_id,
        command="true",
        max_retries=0,
        priority=0,
        run_at=0.0,
        timeout=0.0,
        queue="default",
        cwd="/",
        environ={},
    )
