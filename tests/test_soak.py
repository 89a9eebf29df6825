"""Soak: 64 clients enqueue, list and cancel while 8 workers run jobs.

Afterwards every job is terminal, each completed job ran exactly once (each
run appends its id to a file), nothing acknowledged is missing, and the
daemon's memory and file descriptors are back near where they started, with
no zombie left. The short run is in the default suite; the long one is
marked slow.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import JOB_STATES, TERMINAL_STATES
from tests.conftest import wait_for
from tests.proctools import open_fds, rss_bytes, worker_pids, zombies_under

CLIENTS = 64
WORKERS = 8


def soak(daemon, workdir, seconds: float, max_jobs: int) -> dict:
    ran = workdir / "ran"
    command = f"echo $QUEUECTL_JOB_ID >> {ran}"
    with daemon.client() as client:
        client.scale_workers(WORKERS)
        wait_for(lambda: client.status()["workers"]["idle"] == WORKERS, what="the fleet")
        # Warm up, so the baseline includes what any daemon allocates once.
        warm = client.enqueue(*({"id": f"warm{i}", "command": command} for i in range(200)))
        assert client.wait(warm, timeout=60)["done"]
    time.sleep(0.5)
    base_rss, base_fds = rss_bytes(daemon.pid), open_fds(daemon.pid)

    per_client = max_jobs // CLIENTS
    enqueued: list[list[str]] = [[] for _ in range(CLIENTS)]
    canceled: list[set[str]] = [set() for _ in range(CLIENTS)]
    errors: list[BaseException] = []
    ops = Counter()
    deadline = time.monotonic() + seconds

    def client_loop(n: int) -> None:
        rng = random.Random(n)
        mine = enqueued[n]
        try:
            with daemon.client() as client:
                seq = 0
                while time.monotonic() < deadline:
                    roll = rng.random()
                    if roll < 0.35 and len(mine) < per_client:
                        batch = [
                            {
                                "id": f"s{n}-{seq + k}",
                                "command": command,
                                "priority": rng.randint(0, 3),
                            }
                            for k in range(rng.randint(1, 4))
                        ]
                        seq += len(batch)
                        mine += client.enqueue(*batch)
                        ops["enqueue"] += 1
                    elif roll < 0.55 and mine:
                        victim = rng.choice(mine)
                        try:
                            if client.cancel(victim)["state"] == "canceled":
                                canceled[n].add(victim)
                        except ProtocolError as exc:
                            if exc.code != ErrorCode.CONFLICT:  # already running or done
                                raise
                        ops["cancel"] += 1
                    elif roll < 0.8:
                        client.call("list_jobs", state=rng.choice([None, *JOB_STATES]), limit=50)
                        ops["list"] += 1
                    elif roll < 0.9:
                        client.status()
                        ops["status"] += 1
                    elif mine:
                        client.get_job(rng.choice(mine))
                        ops["get"] += 1
                    time.sleep(rng.uniform(0, 0.02))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    assert not errors, errors[:3]
    all_ids = [i for ids in enqueued for i in ids]
    assert all_ids, "no job was enqueued"

    with daemon.client() as client:

        def settled():
            counts = client.status()["jobs"]
            return sum(counts[s] for s in JOB_STATES if s not in TERMINAL_STATES) == 0

        wait_for(settled, timeout=180, interval=0.5, what="every job to reach a terminal state")
        jobs = {j["id"]: j for j in client.list_jobs() if not j["id"].startswith("warm")}
        status = client.status()
    assert set(jobs) == set(all_ids), "acknowledged jobs are missing"
    runs = Counter(line for line in ran.read_text().split() if not line.startswith("warm"))
    states = Counter(job["state"] for job in jobs.values())
    for job_id, job in jobs.items():
        assert job["state"] in ("completed", "canceled"), job
        if job["state"] == "completed":
            assert runs[job_id] == 1, f"{job_id} ran {runs[job_id]} times"
        else:
            assert runs[job_id] <= 1, f"canceled {job_id} ran {runs[job_id]} times"
    assert max(runs.values()) == 1
    assert status["workers"]["alive"] == WORKERS
    assert len(worker_pids(daemon.pid)) == WORKERS

    time.sleep(1.0)  # let closed connections and finished runs be released
    rss, fds = rss_bytes(daemon.pid), open_fds(daemon.pid)
    assert fds <= base_fds + 2, f"file descriptors: {base_fds} before, {fds} after"
    assert rss <= base_rss + 40 * 1024 * 1024, f"RSS grew from {base_rss} to {rss}"
    assert zombies_under(daemon.pid) == []
    return {
        "jobs": len(all_ids),
        "states": dict(states),
        "ops": dict(ops),
        "rss_before": base_rss,
        "rss_after": rss,
        "fds_before": base_fds,
        "fds_after": fds,
    }


def test_soak_short(daemon, workdir):
    report = soak(daemon, workdir, seconds=15, max_jobs=3000)
    print(report)


@pytest.mark.slow
def test_soak_long(daemon, workdir):
    report = soak(daemon, workdir, seconds=300, max_jobs=40_000)
    print(report)
