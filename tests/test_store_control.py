"""Queues, dependencies, unique keys, retry, edit and purge in the SQLite store,
without a daemon."""

from __future__ import annotations

import sqlite3

import pytest

from queuectld.store import NewJob, StoreError, Transition
from queuectld.store.sqlite.schema import MIGRATIONS
from queuectld.store.sqlite.store import SQLiteStore
from tests.test_store import OWNER, tx


def job(job_id=None, queue="default", priority=0, run_at=0.0, **kw) -> NewJob:
    return NewJob(
        id=job_id,
        command="true",
        max_retries=0,
        priority=priority,
        run_at=run_at,
        timeout=0.0,
        queue=queue,
        cwd="/",
        environ={"PATH": "/bin"},
        **kw,
    )


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "q.db")
    yield s
    s.close()


def claim(store, limit=10, now=10.0):
    return [c.id for c in tx(store, store.claim_due_jobs, now, limit, OWNER)]


def finish(store, job_id, state, now=11.0):
    seq = store.conn.execute("SELECT seq, runs FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finished = tx(
        store,
        store.finish_run,
        seq[0],
        seq[1],
        owner=OWNER,
        change=Transition(
            state, "completed" if state == "completed" else "failed", True, None, None
        ),
        now=now,
    )
    assert finished.applied
    return finished.canceled


def state_of(store, job_id):
    return tx(store, store.get_job, job_id, False)["state"]


# -- queues -------------------------------------------------------------------------


def test_claim_respects_queue_limit_and_pause(store):
    tx(store, store.add_jobs, [job(f"a{i}", "a") for i in range(5)], 0)
    tx(store, store.add_jobs, [job(f"b{i}", "b") for i in range(5)], 0)
    tx(store, store.set_queue, "a", {"concurrency": 2})
    tx(store, store.set_queue, "b", {"paused": True})
    assert claim(store) == ["a0", "a1"]
    assert claim(store) == []  # a is full, b is paused
    assert tx(store, store.next_due_time) is None  # nothing could start: no busy timer
    finish(store, "a0", "completed")
    assert claim(store) == ["a2"]
    tx(store, store.set_queue, "b", {"paused": False})
    assert claim(store, limit=3) == ["b0", "b1", "b2"]


def test_higher_queue_priority_is_served_first_then_job_priority(store):
    tx(store, store.add_jobs, [job("lo-urgent", "lo", priority=99), job("lo", "lo")], 0)
    tx(store, store.add_jobs, [job("hi", "hi"), job("hi-urgent", "hi", priority=5)], 0)
    tx(store, store.set_queue, "hi", {"priority": 1})
    assert claim(store) == ["hi-urgent", "hi", "lo-urgent", "lo"]


def test_queue_overview_counts_and_oldest_due_age(store):
    tx(store, store.add_jobs, [job("x", "q", run_at=4.0), job("y", "q", run_at=50.0)], 0)
    tx(store, store.add_jobs, [job("z", "r")], 0)
    tx(store, store.set_queue, "idle", {"concurrency": 3})
    assert claim(store, limit=1) == ["z"]  # due earliest
    overview = {q["name"]: q for q in tx(store, store.queue_overview, 10.0)}
    assert overview["q"]["jobs"]["pending"] == 2
    assert overview["q"]["oldest_due_age"] == 6.0  # x; y is not due yet
    assert (overview["r"]["running"], overview["r"]["oldest_due_age"]) == (1, None)
    assert overview["idle"]["concurrency"] == 3
    assert sum(overview["idle"]["jobs"].values()) == 0


def test_queue_counts_follow_edit_and_purge(store):
    tx(store, store.add_jobs, [job("m", "one")], 0)
    tx(store, store.edit_job, "m", {"queue": "two"}, 1.0)
    assert tx(store, store.queue_counts, "one")["pending"] == 0
    assert tx(store, store.queue_counts, "two")["pending"] == 1
    claim(store)
    finish(store, "m", "completed", now=2.0)
    assert tx(store, store.purge_jobs, "completed", 3.0, None, 100) == (1, [])
    assert tx(store, store.queue_counts, "two")["completed"] == 0


def _vm_steps(store, fn, *args):
    """SQLite virtual machine steps one call costs: a measure of rows visited that,
    unlike wall time, does not depend on the machine's load."""
    steps = [0]

    def count():
        steps[0] += 1
        return 0

    store.conn.set_progress_handler(count, 100)
    try:
        result = tx(store, fn, *args)
    finally:
        store.conn.set_progress_handler(None, 0)
    return result, steps[0] * 100


def test_claiming_does_not_walk_delayed_or_paused_backlogs(store):
    # 30,000 delayed jobs of high priority and 30,000 due jobs of a paused queue.
    tx(
        store,
        store.add_jobs,
        [job(f"later{i}", "q", priority=9, run_at=1e9 + i) for i in range(30_000)],
        0,
    )
    tx(store, store.add_jobs, [job(f"held{i}", "held") for i in range(30_000)], 0)
    tx(store, store.set_queue, "held", {"paused": True})
    tx(store, store.add_jobs, [job("now", "q", priority=1)], 0)
    claimed, steps = _vm_steps(store, store.claim_due_jobs, 10.0, 4, OWNER)
    assert [c.id for c in claimed] == ["now"]
    assert steps < 20_000, steps  # a scan past either backlog costs about 400,000
    due, steps = _vm_steps(store, store.next_due_time)
    assert due == 1e9
    assert steps < 5_000, steps


# -- dependencies -------------------------------------------------------------------


def test_dependency_chain_cascades_cancel_when_middle_dies(store):
    tx(store, store.add_jobs, [job("a"), job("b", after=["a"]), job("c", after=["b"])], 0)
    tx(store, store.add_jobs, [job("d", after=["c", "a"])], 0)
    assert claim(store) == ["a"]  # b, c, d wait
    assert finish(store, "a", "completed") == []
    assert claim(store) == ["b"]
    assert finish(store, "b", "dead") == ["c", "d"]
    c = tx(store, store.get_job, "c", False)
    assert (c["state"], c["last_error"]) == ("canceled", "dependency b ended dead")
    d = tx(store, store.get_job, "d", False)
    assert (d["state"], d["last_error"]) == ("canceled", "dependency c ended canceled")
    assert d["after"] == ["c", "a"]


def test_batch_may_name_later_jobs_and_rejects_cycles_and_unknown_ids(store):
    ids = tx(store, store.add_jobs, [job("late", after=["early"]), job("early")], 0)
    assert ids == ["late", "early"]
    assert claim(store) == ["early"]
    with pytest.raises(StoreError, match="does not exist"):
        tx(store, store.add_jobs, [job("x", after=["ghost"])], 0)
    with pytest.raises(StoreError, match="cycle: p -> q -> r -> p"):
        tx(
            store,
            store.add_jobs,
            [job("p", after=["q"]), job("q", after=["r"]), job("r", after=["p"])],
            0,
        )
    with pytest.raises(StoreError, match="after itself"):
        tx(store, store.add_jobs, [job("self", after=["self"])], 0)
    assert tx(store, store.get_job, "p", False) is None  # the batch was all or nothing


def test_dependency_already_finished_at_enqueue(store):
    tx(store, store.add_jobs, [job("ok"), job("bad")], 0)
    claim(store)
    finish(store, "ok", "completed")
    finish(store, "bad", "dead")
    tx(store, store.add_jobs, [job("after-ok", after=["ok"]), job("after-bad", after=["bad"])], 20)
    assert claim(store, now=30) == ["after-ok"]
    assert tx(store, store.get_job, "after-bad", False)["last_error"] == "dependency bad ended dead"


def test_cancel_cascades_and_retry_waits_for_dependencies_again(store):
    tx(store, store.add_jobs, [job("a", run_at=100), job("b", after=["a"])], 0)
    record = tx(store, store.cancel_waiting_job, "a", 1.0)
    assert record["canceled_dependents"] == ["b"]
    with pytest.raises(StoreError, match="dependency 'a' is canceled; retry that first"):
        tx(store, store.retry_job, "b", 2.0)
    tx(store, store.retry_job, "a", 2.0)
    tx(store, store.retry_job, "b", 2.0)
    assert claim(store) == ["a"]  # b waits for the new run of a
    finish(store, "a", "completed")
    assert claim(store) == ["b"]


# -- unique keys --------------------------------------------------------------------


def test_unique_key_returns_the_live_holder_until_it_finishes(store):
    first = tx(store, store.insert_jobs, [job(unique_key="k")], 0, "ignore")
    second = tx(store, store.insert_jobs, [job(unique_key="k")], 0, "ignore")
    assert second.ids == first.ids and second.existing == first.ids
    with pytest.raises(StoreError, match="unique key 'k' is held by job"):
        tx(store, store.insert_jobs, [job(unique_key="k")], 0, "error")
    claim(store)
    again = tx(store, store.insert_jobs, [job(unique_key="k")], 0, "ignore")
    assert again.ids == first.ids  # processing still holds it
    finish(store, first.ids[0], "completed")
    fresh = tx(store, store.insert_jobs, [job(unique_key="k")], 0, "ignore")
    assert fresh.ids != first.ids and fresh.existing == []
    # A finished holder cannot be retried while the key is held again.
    with pytest.raises(StoreError, match="unique key 'k' is held by job"):
        tx(store, store.retry_job, first.ids[0], 30)


def test_unique_key_is_enforced_by_the_index_not_by_a_check(store):
    tx(store, store.add_jobs, [job("holder", unique_key="k")], 0)
    insert = (
        "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, "
        "env_id, created_at, updated_at, run_at, unique_key) "
        "SELECT ?, 'true', ?, 'q', 0, 0, 0, env_id, 0, 0, 0, 'k' FROM jobs WHERE id = 'holder'"
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute(insert, ("raw", "pending"))
    store.conn.execute(insert, ("finished", "completed"))  # finished jobs do not hold keys


# -- retry, edit, purge ---------------------------------------------------------------


def test_retry_keeps_history_and_refuses_unfinished_jobs(store):
    tx(store, store.add_jobs, [job("r")], 0)
    with pytest.raises(StoreError, match="it is pending"):
        tx(store, store.retry_job, "r", 1)
    claim(store)
    finish(store, "r", "completed")
    record = tx(store, store.retry_job, "r", 12.0)
    assert (record["state"], record["runs"], record["attempts"]) == ("pending", 1, 0)
    assert claim(store, now=13) == ["r"]
    assert tx(store, store.get_job, "r")["history"][-1]["run"] == 2


def test_edit_changes_a_pending_job_and_refuses_one_that_started(store):
    tx(store, store.add_jobs, [job("e", run_at=100)], 0)
    record = tx(store, store.edit_job, "e", {"command": "echo new", "priority": 4}, 1.0)
    assert (record["command"], record["priority"]) == ("echo new", 4)
    tx(store, store.edit_job, "e", {"run_at": 5.0}, 1.0)
    assert claim(store) == ["e"]
    with pytest.raises(StoreError, match="it is processing and it has started"):
        tx(store, store.edit_job, "e", {"priority": 1}, 11.0)


def test_purge_deletes_old_finished_jobs_with_their_runs(store):
    tx(store, store.add_jobs, [job("old"), job("new"), job("dep", after=["old"])], 0)
    claim(store)
    finish(store, "old", "completed", now=11)
    finish(store, "new", "completed", now=500)
    count, _ = tx(store, store.purge_jobs, "completed", 100.0, None, 100)
    assert count == 1
    assert tx(store, store.get_job, "old", False) is None
    assert tx(store, store.get_job, "new", False) is not None
    assert store.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert store.conn.execute("SELECT count(*) FROM job_deps").fetchone()[0] == 0
    with pytest.raises(StoreError, match="only finished jobs"):
        tx(store, store.purge_jobs, "pending", 100.0, None, 100)


def test_purge_removes_environments_no_job_uses_any_more(store):
    lone = NewJob(**{**job("lone").__dict__, "environ": {"PATH": "/only/here"}})
    tx(store, store.add_jobs, [lone, job("shared")], 0)
    claim(store)
    finish(store, "lone", "completed", now=11)
    finish(store, "shared", "completed", now=11)
    tx(store, store.add_jobs, [job("stays", run_at=1000)], 0)  # shares "shared"'s environment
    assert tx(store, store.purge_jobs, "completed", 100.0, None, 100)[0] == 2
    environments = store.conn.execute("SELECT count(*) FROM environments").fetchone()[0]
    assert environments == 1
    assert tx(store, store.get_job, "stays", False)["state"] == "pending"


def test_migration_from_schema_1_backfills_queue_counts(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    from queuectld.store.sqlite.schema import APPLICATION_ID
    from queuectld.store.sqlite.store import _split_sql

    for statement in _split_sql(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("INSERT INTO environments (digest, cwd, environ) VALUES (x'00', '/', x'80')")
    conn.execute(
        "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, env_id, "
        "created_at, updated_at, run_at) VALUES ('old', 'true', 'pending', 'mail', 0, 0, 0, 1, "
        "0, 0, 0)"
    )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    try:
        assert tx(store, store.queue_counts, "mail")["pending"] == 1
        assert claim(store) == ["old"]
        assert tx(store, store.queue_counts, "mail")["processing"] == 1
    finally:
        store.close()


# -- counts kept by the store -------------------------------------------------------


def _counts_by_scan(store):
    by_queue = {
        (queue, state): n
        for queue, state, n in store.conn.execute(
            "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"
        )
    }
    by_state = {
        state: n
        for state, n in store.conn.execute("SELECT state, count(*) FROM jobs GROUP BY state")
    }
    return by_queue, by_state


def _counts_kept(store):
    by_queue = {
        (queue, state): n
        for queue, state, n in store.conn.execute(
            "SELECT queue, state, n FROM queue_counts WHERE n > 0"
        )
    }
    by_state = {
        state: n for state, n in store.conn.execute("SELECT state, n FROM job_counts WHERE n > 0")
    }
    return by_queue, by_state


def test_inserted_jobs_are_counted_per_batch_and_a_failed_insert_counts_nothing(store):
    tx(store, store.add_jobs, [job(), job(), job(queue="mail")], 0)
    tx(store, store.add_jobs, [job("gone"), job("dep", after=["gone"])], 0)
    tx(store, store.insert_jobs, [job(unique_key="k")], 0, "ignore")
    tx(store, store.insert_jobs, [job(unique_key="k")], 0, "ignore")  # held: not inserted
    claim(store, limit=1)
    tx(store, store.cancel_waiting_job, "gone", 1.0)  # cancels its dependent too
    tx(store, store.add_jobs, [job("late", after=["gone"])], 0)  # canceled at insert
    with pytest.raises(StoreError):
        tx(store, store.add_jobs, [job("new"), job("late")], 0)  # duplicate id: rolled back
    assert _counts_kept(store) == _counts_by_scan(store)
    assert tx(store, store.count_by_state)["canceled"] == 3


def test_migration_5_keeps_the_counts_of_a_version_4_file(tmp_path):
    from queuectld.store.sqlite.schema import APPLICATION_ID
    from queuectld.store.sqlite.store import _split_sql

    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:4]:
        for statement in _split_sql(migration):
            conn.execute(statement)
    conn.execute("INSERT INTO environments (digest, cwd, environ) VALUES (x'00', '/', x'80')")
    for job_id, queue in (("a", "default"), ("b", "mail"), ("c", "mail")):
        conn.execute(
            "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, "
            "env_id, created_at, updated_at, run_at) "
            f"VALUES ('{job_id}', 'true', 'pending', '{queue}', 0, 0, 0, 1, 0, 0, 0)"
        )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 4")
    conn.close()
    store = SQLiteStore(path)
    try:
        tx(store, store.add_jobs, [job(queue="mail")], 0)
        assert tx(store, store.queue_counts, "mail")["pending"] == 3
        assert tx(store, store.count_by_state)["pending"] == 4
        assert _counts_kept(store) == _counts_by_scan(store)
    finally:
        store.close()
