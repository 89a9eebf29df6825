"""Retention: finished jobs are pruned by age and count with their logs; the DLQ
stays until it is retried or purged."""

from __future__ import annotations

import time
from pathlib import Path

from queuectld.store import NewJob, Transition
from queuectld.store.sqlite.store import SQLiteStore
from tests.conftest import wait_for


def finish_jobs(daemon, ok: int, dead: int) -> None:
    with daemon.client() as client:
        client.enqueue(*({"id": f"ok{i}", "command": f"echo out{i}"} for i in range(ok)))
        client.enqueue(
            *(
                {"id": f"dead{i}", "command": "echo no; false", "max_retries": 0}
                for i in range(dead)
            )
        )
        # One worker: jobs finish one after another, so no two share a finish time at
        # the millisecond precision of job records, which the test orders by.
        client.scale_workers(1)
        ids = [f"ok{i}" for i in range(ok)] + [f"dead{i}" for i in range(dead)]
        assert client.wait(ids, timeout=60)["done"]


def log_files(daemon) -> list[Path]:
    return sorted((daemon.home / "logs").rglob("*.log"))


def test_count_and_age_prune_finished_jobs_and_their_logs_but_keep_the_dlq(daemon):
    finish_jobs(daemon, ok=10, dead=2)
    assert len(log_files(daemon)) == 12
    with daemon.client() as client:
        done = sorted(client.list_jobs(state="completed"), key=lambda j: j["finished_at"])
        newest = {j["id"] for j in done[-3:]}
        client.config_set("retention-count", "3")
        wait_for(lambda: client.status()["jobs"]["completed"] == 3, what="pruning to 3")
        assert {j["id"] for j in client.list_jobs(state="completed")} == newest
        assert client.status()["jobs"]["dead"] == 2
        assert len(log_files(daemon)) == 3 + 2
        time.sleep(1.1)
        client.config_set("retention-age", "1")
        wait_for(lambda: client.status()["jobs"]["completed"] == 0, what="pruning by age")
        assert [j["id"] for j in client.dlq_list()] == ["dead0", "dead1"]
        assert len(log_files(daemon)) == 2
    # Pruned jobs are gone for every command.
    result = daemon.cli("show", "ok0")
    assert result.returncode == 1 and "not_found" in result.stderr


def test_dlq_purge_one_and_all(daemon):
    finish_jobs(daemon, ok=1, dead=3)
    result = daemon.cli("dlq", "purge", "dead0")
    assert result.returncode == 0 and result.stdout.split() == ["dead0"]
    assert daemon.cli("show", "dead0").returncode == 1
    refused = daemon.cli("dlq", "purge", "ok0")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "queuectl: conflict: cannot purge job 'ok0': it is completed"
    assert daemon.cli("dlq", "purge").returncode == 2
    result = daemon.cli("dlq", "purge", "--all")
    assert result.returncode == 0 and sorted(result.stdout.split()) == ["dead1", "dead2"]
    assert daemon.cli_json("dlq", "list") == []
    assert [p.name for p in log_files(daemon)] == ["1-1.log"]  # only ok0's log is left


def test_pruning_drops_environments_no_job_uses(tmp_path):
    store = SQLiteStore(tmp_path / "q.db")

    def job(job_id: str, cwd: str) -> NewJob:
        return NewJob(job_id, "true", 0, 0, 0.0, 0.0, "default", cwd, {"A": cwd})

    store.begin()
    store.add_jobs([job("a", "/a"), job("b", "/b")], 0.0)
    for claimed in store.claim_due_jobs(1.0, 2, "d1"):
        store.finish_run(
            claimed.seq,
            claimed.run,
            owner="d1",
            change=Transition("completed", "completed", True, None, None),
            now=2.0,
        )
    assert store.prune_finished(3.0, 0, 1) == (1, [])
    store.commit()
    assert store.conn.execute("SELECT count(*) FROM environments").fetchone()[0] == 1
    store.begin()
    store.add_jobs([job("c", "/a")], 4.0)  # the dropped environment comes back as a new row
    store.commit()
    assert store.conn.execute("SELECT count(*) FROM environments").fetchone()[0] == 2
    store.close()
