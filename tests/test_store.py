"""The SQLite store through its interface, without a daemon."""

from __future__ import annotations

import sqlite3

import pytest

from queuectld.store import NewJob, StoreError, Transition
from queuectld.store.sqlite import rows as sqlite_rows
from queuectld.store.sqlite.store import ForeignDatabase, SQLiteStore

OWNER = "d1"  # the daemon that claims and finishes runs in these tests


def job(command="true", job_id=None, priority=0, run_at=0.0, **kw) -> NewJob:
    return NewJob(
        id=job_id,
        command=command,
        max_retries=3,
        priority=priority,
        run_at=run_at,
        timeout=0.0,
        queue="default",
        cwd="/",
        environ={"PATH": "/bin"},
        **kw,
    )


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "q.db")
    yield s
    s.close()


def tx(store, fn, *args, **kwargs):
    store.begin()
    try:
        result = fn(*args, **kwargs)
    except BaseException:
        store.rollback()
        raise
    store.commit()
    return result


def test_claims_by_priority_then_due_time(store):
    tx(
        store,
        store.add_jobs,
        [
            job(job_id="low", priority=0, run_at=1),
            job(job_id="high", priority=9, run_at=3),
            job(job_id="early", priority=0, run_at=0.5),
            job(job_id="future", priority=99, run_at=100),
        ],
        0,
    )
    claimed = tx(store, store.claim_due_jobs, 10.0, 10, OWNER)
    assert [c.id for c in claimed] == ["high", "early", "low"]
    assert tx(store, store.next_due_time) == 100
    assert tx(store, store.claim_due_jobs, 10.0, 10, OWNER) == []


def test_counts_follow_every_transition(store):
    tx(store, store.add_jobs, [job(job_id=str(i)) for i in range(5)], 0)
    [first] = tx(store, store.claim_due_jobs, 1.0, 1, OWNER)
    tx(
        store,
        store.finish_run,
        first.seq,
        first.run,
        owner=OWNER,
        change=Transition("dead", "failed", True, None, "exit code 1"),
        now=2.0,
        exit_code=1,
    )
    tx(store, store.cancel_waiting_job, "3", 2.0)
    counts = tx(store, store.count_by_state)
    assert counts == {
        "pending": 3,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "dead": 1,
        "canceled": 1,
    }
    assert tx(store, store.retry_dead_jobs, None, 3.0) == [first.id]
    assert tx(store, store.count_by_state)["pending"] == 4


def test_duplicate_id_conflicts_and_rolls_back_the_batch(store):
    tx(store, store.add_jobs, [job(job_id="a")], 0)
    with pytest.raises(StoreError) as caught:
        tx(store, store.add_jobs, [job(job_id="b"), job(job_id="a")], 0)
    assert caught.value.code == "conflict"
    assert tx(store, store.get_job, "b") is None


def test_environment_is_stored_once_per_distinct_value(store):
    tx(store, store.add_jobs, [job() for _ in range(50)], 0)
    assert store.conn.execute("SELECT count(*) FROM environments").fetchone()[0] == 1
    claimed = tx(store, store.claim_due_jobs, 1.0, 1, OWNER)
    assert claimed[0].environ == {"PATH": "/bin"}


def test_job_env_is_merged_over_the_submitters(store):
    tx(store, store.add_jobs, [job(env={"PATH": "/opt", "X": "1"})], 0)
    [claimed] = tx(store, store.claim_due_jobs, 1.0, 1, OWNER)
    assert claimed.environ == {"PATH": "/opt", "X": "1"}


def test_foreign_database_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE precious (x)")
    conn.execute("INSERT INTO precious VALUES (42)")
    conn.commit()
    conn.close()
    with pytest.raises(ForeignDatabase, match="not queuectl's"):
        SQLiteStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT x FROM precious").fetchone() == (42,)
    conn.close()


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ForeignDatabase):
        SQLiteStore(path)
    assert path.read_bytes().startswith(b"this is not a database")


def test_a_version_1_file_is_migrated_in_place_keeping_its_jobs(tmp_path):
    from queuectld.store.sqlite.schema import APPLICATION_ID, MIGRATIONS
    from queuectld.store.sqlite.store import _split_sql

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _split_sql(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO environments (id, digest, cwd, environ) VALUES (1, x'00', '/', x'80')"
    )
    conn.execute(
        "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, env_id, "
        "created_at, updated_at, run_at) VALUES ('old', 'true', 'pending', 'default', 0, 3, 0, "
        "1, 0, 0, 0)"
    )
    conn.close()
    store = SQLiteStore(path)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert len(store.instance_id()) == 16
    assert store.get_job("old")["state"] == "pending"
    [claimed] = tx(store, store.claim_due_jobs, 1.0, 1, OWNER)
    assert claimed.id == "old" and claimed.run_uid is None
    store.close()


def end_run(store, claimed, state: str, run_at=None, error=None, **kwargs) -> None:
    """A counted run that ended with its job in `state` (completed or failed)."""
    tx(
        store,
        store.finish_run,
        claimed.seq,
        claimed.run,
        owner=OWNER,
        change=Transition(state, state, True, run_at, error),
        **kwargs,
    )


def test_released_claims_leave_jobs_as_if_never_claimed(store):
    tx(store, store.add_jobs, [job(job_id="fresh"), job(job_id="retried")], 0)
    claimed = {c.id: c for c in tx(store, store.claim_due_jobs, 1.0, 2, OWNER)}
    end_run(store, claimed["retried"], "failed", now=2.0, run_at=3.0, exit_code=1)
    before = tx(store, store.get_job, "retried")
    [again] = tx(store, store.claim_due_jobs, 4.0, 1, OWNER)
    assert (again.id, again.run, again.prior_state) == ("retried", 2, "failed")
    fresh = claimed["fresh"]
    assert fresh.prior_state == "pending"
    tx(store, store.release_claims, [(fresh.seq, fresh.run, "pending")], OWNER, 5.0)
    tx(store, store.release_claims, [(again.seq, again.run, "failed")], OWNER, 5.0)

    after = tx(store, store.get_job, "retried")
    for key in ("state", "attempts", "started_at", "history"):
        assert after[key] == before[key], key
    plain = tx(store, store.get_job, "fresh")
    assert (plain["state"], plain["started_at"], plain["history"]) == ("pending", None, [])
    counts = tx(store, store.count_by_state)
    assert (counts["pending"], counts["failed"], counts["processing"]) == (1, 1, 0)
    # Claimed again, they get the same run numbers: nothing of the released runs is left.
    assert sorted((c.id, c.run) for c in tx(store, store.claim_due_jobs, 6.0, 2, OWNER)) == [
        ("fresh", 1),
        ("retried", 2),
    ]


def test_a_release_after_the_run_ended_changes_nothing(store):
    tx(store, store.add_jobs, [job(job_id="done")], 0)
    [claimed] = tx(store, store.claim_due_jobs, 1.0, 1, OWNER)
    end_run(store, claimed, "completed", now=2.0, exit_code=0)
    tx(store, store.release_claims, [(claimed.seq, claimed.run, "pending")], OWNER, 3.0)
    record = tx(store, store.get_job, "done")
    assert record["state"] == "completed" and len(record["history"]) == 1


def _scripted_ids(monkeypatch, *draws: str) -> None:
    """Make the id generator hand out these ids, in order, then random ones again."""
    queue = list(draws)
    real = sqlite_rows.random_ids

    def scripted(count: int) -> list[str]:
        taken, queue[:] = queue[:count], queue[count:]
        return taken + real(count - len(taken))

    monkeypatch.setattr(sqlite_rows, "random_ids", scripted)


def test_a_generated_id_that_is_taken_is_drawn_again_not_refused(store, monkeypatch):
    tx(store, store.add_jobs, [job(job_id="aaaaaaaaaaaa")], 0)
    # Plain batch: the first draw is taken by a stored job, the two others repeat.
    _scripted_ids(monkeypatch, "aaaaaaaaaaaa", "bbbbbbbbbbbb", "bbbbbbbbbbbb")
    ids = tx(store, store.add_jobs, [job(), job(), job()], 0)
    assert len(set(ids)) == 3 and "aaaaaaaaaaaa" not in ids and "bbbbbbbbbbbb" in ids
    # The path for unique keys and dependencies draws again too.
    _scripted_ids(monkeypatch, "aaaaaaaaaaaa")
    [unique] = tx(store, store.add_jobs, [job(unique_key="k")], 0)
    assert unique != "aaaaaaaaaaaa"
    assert tx(store, store.count_by_state)["pending"] == 5
    # An id the client chose is still refused when taken.
    with pytest.raises(StoreError, match="already exists"):
        tx(store, store.add_jobs, [job(), job(job_id="aaaaaaaaaaaa")], 0)
    assert tx(store, store.count_by_state)["pending"] == 5
