"""What only the SQLite backend has: its file (foreign, damaged and old ones), its
tables (environments stored once, counters, rows left by a purge), its indexes,
its id generator and the cost of its queries. Behaviour every backend shares is
in tests/store_contract/; these tests call the store through the same runner."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from queuectld.store import StoreError
from queuectld.store import rules as store_rules
from queuectld.store.sqlite.schema import APPLICATION_ID, MIGRATIONS
from queuectld.store.sqlite.store import ForeignDatabase, SQLiteStore, _split_sql
from tests.store_contract.conftest import (
    OWNER,
    Contract,
    add,
    claim,
    finish,
    insert_every_kind,
    job,
    purge_beside_a_job_that_stays,
)


@pytest.fixture
def sqlite(tmp_path) -> SQLiteStore:
    """The backend itself, for looking at its tables between calls of `store`."""
    return SQLiteStore(tmp_path / "q.db")


@pytest.fixture
def store(sqlite) -> Iterator[Contract]:
    contract = Contract(sqlite)
    yield contract
    contract.close()


def opened(path) -> tuple[SQLiteStore, Contract]:
    backend = SQLiteStore(path)
    return backend, Contract(backend)


def count_rows(sqlite: SQLiteStore, table: str) -> int:
    return sqlite.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# -- the file -----------------------------------------------------------------------


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
    backend, store = opened(path)
    try:
        assert backend.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert len(store.instance_id()) == 16
        assert store.get_job("old").state == "pending"
        [claimed] = store.claim_due_jobs(1.0, 1, OWNER)
        assert claimed.id == "old" and claimed.run_uid is None
    finally:
        store.close()


def test_migration_from_schema_1_backfills_queue_counts(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
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
    _, store = opened(path)
    try:
        assert store.queue_counts("mail")["pending"] == 1
        assert claim(store) == ["old"]
        assert store.queue_counts("mail")["processing"] == 1
    finally:
        store.close()


def test_migration_5_keeps_the_counts_of_a_version_4_file(tmp_path):
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
    backend, store = opened(path)
    try:
        add(store, [job(queue="mail")])
        assert store.queue_counts("mail")["pending"] == 3
        assert store.count_by_state()["pending"] == 4
        assert _counts_kept(backend) == _counts_by_scan(backend)
    finally:
        store.close()


# -- tables ---------------------------------------------------------------------------


def test_environment_is_stored_once_per_distinct_value(store, sqlite):
    add(store, [job() for _ in range(50)])
    assert count_rows(sqlite, "environments") == 1
    claimed = store.claim_due_jobs(1.0, 1, OWNER)
    assert claimed[0].environ == {"PATH": "/bin"}


def test_purge_leaves_no_runs_or_dependency_rows_of_the_jobs_it_deletes(store, sqlite):
    add(store, [job(job_id="old"), job(job_id="new"), job(job_id="dep", after=["old"])])
    claim(store)
    finish(store, "old", "completed", now=11)
    finish(store, "new", "completed", now=500)
    assert store.purge_jobs("completed", 100.0, None, 100)[0] == 1
    assert count_rows(sqlite, "runs") == 1
    assert count_rows(sqlite, "job_deps") == 0


def test_purge_removes_environments_no_job_uses_any_more(store, sqlite):
    purge_beside_a_job_that_stays(store)
    assert count_rows(sqlite, "environments") == 1
    assert store.get_job("stays", False).state == "pending"


def test_unique_key_is_enforced_by_the_index_not_by_a_check(store, sqlite):
    add(store, [job(job_id="holder", unique_key="k")])
    insert = (
        "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, "
        "env_id, created_at, updated_at, run_at, unique_key) "
        "SELECT ?, 'true', ?, 'q', 0, 0, 0, env_id, 0, 0, 0, 'k' FROM jobs WHERE id = 'holder'"
    )
    with pytest.raises(sqlite3.IntegrityError):
        sqlite.conn.execute(insert, ("raw", "pending"))
    sqlite.conn.execute(insert, ("finished", "completed"))  # finished jobs do not hold keys


def _counts_by_scan(sqlite):
    by_queue = {
        (queue, state): n
        for queue, state, n in sqlite.conn.execute(
            "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"
        )
    }
    by_state = {
        state: n
        for state, n in sqlite.conn.execute("SELECT state, count(*) FROM jobs GROUP BY state")
    }
    return by_queue, by_state


def _counts_kept(sqlite):
    by_queue = {
        (queue, state): n
        for queue, state, n in sqlite.conn.execute(
            "SELECT queue, state, n FROM queue_counts WHERE n > 0"
        )
    }
    by_state = {
        state: n for state, n in sqlite.conn.execute("SELECT state, n FROM job_counts WHERE n > 0")
    }
    return by_queue, by_state


def test_counter_tables_agree_with_the_jobs_after_every_kind_of_insert(store, sqlite):
    insert_every_kind(store)
    assert _counts_kept(sqlite) == _counts_by_scan(sqlite)
    assert store.count_by_state()["canceled"] == 3


# -- the id generator ---------------------------------------------------------------


def _scripted_ids(monkeypatch, *draws: str) -> None:
    """Make the id generator hand out these ids, in order, then random ones again."""
    queue = list(draws)
    real = store_rules.random_ids

    def scripted(count: int) -> list[str]:
        taken, queue[:] = queue[:count], queue[count:]
        return taken + real(count - len(taken))

    monkeypatch.setattr(store_rules, "random_ids", scripted)


def test_a_generated_id_that_is_taken_is_drawn_again_not_refused(store, monkeypatch):
    add(store, [job(job_id="aaaaaaaaaaaa")])
    # Plain batch: the first draw is taken by a stored job, the two others repeat.
    _scripted_ids(monkeypatch, "aaaaaaaaaaaa", "bbbbbbbbbbbb", "bbbbbbbbbbbb")
    ids = add(store, [job(), job(), job()])
    assert len(set(ids)) == 3 and "aaaaaaaaaaaa" not in ids and "bbbbbbbbbbbb" in ids
    # The path for unique keys and dependencies draws again too.
    _scripted_ids(monkeypatch, "aaaaaaaaaaaa")
    [unique] = add(store, [job(unique_key="k")])
    assert unique != "aaaaaaaaaaaa"
    assert store.count_by_state()["pending"] == 5
    # An id the client chose is still refused when taken.
    with pytest.raises(StoreError, match="already exists"):
        add(store, [job(), job(job_id="aaaaaaaaaaaa")])
    assert store.count_by_state()["pending"] == 5


# -- the cost of queries --------------------------------------------------------------


def _vm_steps(store, sqlite, fn, *args):
    """SQLite virtual machine steps one call costs: a measure of rows visited that,
    unlike wall time, does not depend on the machine's load."""
    steps = [0]

    def count():
        steps[0] += 1
        return 0

    sqlite.conn.set_progress_handler(count, 100)
    try:
        result = getattr(store, fn)(*args)
    finally:
        sqlite.conn.set_progress_handler(None, 0)
    return result, steps[0] * 100


def test_claiming_does_not_walk_delayed_or_paused_backlogs(store, sqlite):
    # 30,000 delayed jobs of high priority and 30,000 due jobs of a paused queue.
    add(
        store,
        [job(job_id=f"later{i}", queue="q", priority=9, run_at=1e9 + i) for i in range(30_000)],
    )
    add(store, [job(job_id=f"held{i}", queue="held") for i in range(30_000)])
    store.set_queue("held", {"paused": True})
    add(store, [job(job_id="now", queue="q", priority=1)])
    claimed, steps = _vm_steps(store, sqlite, "claim_due_jobs", 10.0, 4, OWNER)
    assert [c.id for c in claimed] == ["now"]
    assert steps < 20_000, steps  # a scan past either backlog costs about 400,000
    due, steps = _vm_steps(store, sqlite, "next_due_time")
    assert due == 1e9
    assert steps < 5_000, steps
