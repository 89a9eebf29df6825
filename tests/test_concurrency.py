"""Many clients at once: every job stored once and run exactly once."""

from __future__ import annotations

import threading
from collections import Counter

from tests.conftest import wait_for

CLIENTS = 8
JOBS = 2000


def test_2000_jobs_from_8_concurrent_clients_each_run_exactly_once(daemon, workdir):
    ran = workdir / "ran"
    errors: list[BaseException] = []
    ids: list[list[str]] = [[] for _ in range(CLIENTS)]
    daemon.cli("worker", "start", "--count", "4")

    def submit(n: int) -> None:
        try:
            with daemon.client() as client:
                for i in range(JOBS // CLIENTS):
                    job_id = f"c{n}-{i}"
                    # O_APPEND writes of one short line are atomic, so lines never mix.
                    ids[n] += client.enqueue({"id": job_id, "command": f"echo {job_id} >> {ran}"})
        except BaseException as exc:  # reported below: a thread must not swallow it
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    all_ids = [i for batch in ids for i in batch]
    assert len(set(all_ids)) == JOBS

    client = daemon.client()
    wait_for(
        lambda: client.status()["jobs"]["completed"] == JOBS,
        timeout=120,
        interval=0.2,
        what="all jobs to complete",
    )
    counts = Counter(ran.read_text().split())
    assert set(counts) == set(all_ids)
    assert max(counts.values()) == 1
    status = client.status()["jobs"]
    assert status == {
        "pending": 0,
        "processing": 0,
        "completed": JOBS,
        "failed": 0,
        "dead": 0,
        "canceled": 0,
    }
