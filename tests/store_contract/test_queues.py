"""Which due jobs a claim takes: priority and due order, queue limits, pause and
queue priority, and the per-queue figures the store keeps."""

from __future__ import annotations

from tests.store_contract.conftest import OWNER, add, claim, finish, job


def test_claims_by_priority_then_due_time(store):
    add(
        store,
        [
            job(job_id="low", priority=0, run_at=1),
            job(job_id="high", priority=9, run_at=3),
            job(job_id="early", priority=0, run_at=0.5),
            job(job_id="future", priority=99, run_at=100),
        ],
    )
    claimed = store.claim_due_jobs(10.0, 10, OWNER)
    assert [c.id for c in claimed] == ["high", "early", "low"]
    assert store.next_due_time() == 100
    assert store.claim_due_jobs(10.0, 10, OWNER) == []


def test_claim_respects_queue_limit_and_pause(store):
    add(store, [job(job_id=f"a{i}", queue="a") for i in range(5)])
    add(store, [job(job_id=f"b{i}", queue="b") for i in range(5)])
    store.set_queue("a", {"concurrency": 2})
    store.set_queue("b", {"paused": True})
    assert claim(store) == ["a0", "a1"]
    assert claim(store) == []  # a is full, b is paused
    assert store.next_due_time() is None  # nothing could start: no busy timer
    finish(store, "a0", "completed")
    assert claim(store) == ["a2"]
    store.set_queue("b", {"paused": False})
    assert claim(store, limit=3) == ["b0", "b1", "b2"]


def test_higher_queue_priority_is_served_first_then_job_priority(store):
    add(store, [job(job_id="lo-urgent", queue="lo", priority=99), job(job_id="lo", queue="lo")])
    add(store, [job(job_id="hi", queue="hi"), job(job_id="hi-urgent", queue="hi", priority=5)])
    store.set_queue("hi", {"priority": 1})
    assert claim(store) == ["hi-urgent", "hi", "lo-urgent", "lo"]


def test_queue_overview_counts_and_oldest_due_age(store):
    add(store, [job(job_id="x", queue="q", run_at=4.0), job(job_id="y", queue="q", run_at=50.0)])
    add(store, [job(job_id="z", queue="r")])
    store.set_queue("idle", {"concurrency": 3})
    assert claim(store, limit=1) == ["z"]  # due earliest
    overview = {q["name"]: q for q in store.queue_overview(10.0)}
    assert overview["q"]["jobs"]["pending"] == 2
    assert overview["q"]["oldest_due_age"] == 6.0  # x; y is not due yet
    assert (overview["r"]["running"], overview["r"]["oldest_due_age"]) == (1, None)
    assert overview["idle"]["concurrency"] == 3
    assert sum(overview["idle"]["jobs"].values()) == 0


def test_queue_counts_follow_edit_and_purge(store):
    add(store, [job(job_id="m", queue="one")])
    store.edit_job("m", {"queue": "two"}, 1.0)
    assert store.queue_counts("one")["pending"] == 0
    assert store.queue_counts("two")["pending"] == 1
    claim(store)
    finish(store, "m", "completed", now=2.0)
    assert store.purge_jobs("completed", 3.0, None, 100) == (1, [])
    assert store.queue_counts("two")["completed"] == 0


def test_claiming_skips_delayed_and_paused_backlogs(store):
    add(store, [job(job_id=f"later{i}", queue="q", priority=9, run_at=1e9 + i) for i in range(50)])
    add(store, [job(job_id=f"held{i}", queue="held") for i in range(50)])
    store.set_queue("held", {"paused": True})
    add(store, [job(job_id="now", queue="q", priority=1)])
    assert claim(store, limit=4) == ["now"]
    assert store.next_due_time() == 1e9
