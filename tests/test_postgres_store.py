"""What only the PostgreSQL backend has: several daemons in one database at the same
time (claims, queue limits, unique keys and migrations while another transaction is
open), its connection (lost, unreachable, its password) and its count deltas.
Behaviour every backend shares is in tests/store_contract/.

These tests drive two backends' transactions by hand, the way two daemons' store
threads would interleave them; they need the server the contract suite uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from queuectld.store import StoreUnavailable, Transition, open_store
from tests.store_contract.conftest import POSTGRES_WANTED, Contract, job

if not POSTGRES_WANTED:
    pytest.skip(
        "QUEUECTL_TEST_POSTGRES=0: the postgres backend is left out", allow_module_level=True
    )

# Imported only now: without the opt-out, a missing psycopg fails the run, never skips it.
import psycopg  # noqa: E402

from queuectld.store.base import ForeignDatabase  # noqa: E402
from queuectld.store.postgres import PostgresStore  # noqa: E402
from queuectld.store.postgres.connection import redact  # noqa: E402
from queuectld.store.postgres.queues import FOLD_AT  # noqa: E402
from queuectld.store.postgres.schema import MIGRATIONS  # noqa: E402
from tests.store_contract.conftest import postgres_database  # noqa: E402


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_database() as database:
        yield database


@pytest.fixture
def two(url) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    a, b = PostgresStore(url), PostgresStore(url)
    yield a, b
    a.close()
    b.close()


def committed(store: PostgresStore, fn, *args):
    store.begin()
    try:
        result = fn(*args)
    except BaseException:
        store.rollback()
        raise
    store.commit()
    return result


def in_thread(store: PostgresStore, fn, *args) -> tuple[threading.Thread, list]:
    """Run fn in its own transaction of `store` on a thread; the result lands in the list."""
    out: list = []

    def run():
        out.append(committed(store, fn, *args))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


# -- several daemons at once ------------------------------------------------------------


def test_two_daemons_claiming_at_once_take_different_jobs(two):
    a, b = two
    committed(a, a.insert_jobs, [job(job_id=f"j{i}") for i in range(4)], 0.0, "error")
    a.begin()
    mine = [c.id for c in a.claim_due_jobs(1.0, 2, "A")]  # not committed yet
    b.begin()
    theirs = [c.id for c in b.claim_due_jobs(1.0, 10, "B")]  # skips A's rows, does not wait
    b.commit()
    a.commit()
    assert sorted(mine + theirs) == ["j0", "j1", "j2", "j3"]
    assert not set(mine) & set(theirs)


def test_a_limited_queue_is_not_overfilled_by_two_daemons(two):
    a, b = two
    committed(a, a.insert_jobs, [job(job_id=f"q{i}", queue="q") for i in range(3)], 0.0, "error")
    committed(a, a.set_queue, "q", {"concurrency": 1})
    a.begin()
    assert [c.id for c in a.claim_due_jobs(1.0, 5, "A")] == ["q0"]
    thread, out = in_thread(b, b.claim_due_jobs, 1.0, 5, "B")
    time.sleep(0.3)
    assert thread.is_alive()  # waits for A's claim of the queue to commit
    a.commit()
    thread.join(10)
    assert out == [[]]  # then sees the queue full


def test_a_limited_queue_with_nothing_due_holds_no_claim_up(two):
    a, b = two
    jobs = [job(job_id="later", queue="q", run_at=1e9)] + [job(job_id=f"u{i}") for i in range(2)]
    committed(a, a.insert_jobs, jobs, 0.0, "error")
    committed(a, a.set_queue, "q", {"concurrency": 1})
    a.begin()
    assert [c.id for c in a.claim_due_jobs(1.0, 1, "A")] == ["u0"]
    thread, out = in_thread(b, b.claim_due_jobs, 1.0, 5, "B")
    thread.join(5)
    waited = thread.is_alive()
    a.commit()
    thread.join(10)
    assert not waited  # for A's transaction: nothing in q could be claimed anyway
    assert [[c.id for c in claimed] for claimed in out] == [["u1"]]


def test_three_daemons_working_one_store_run_each_job_once_within_the_limit(url):
    setup = PostgresStore(url)
    committed(setup, setup.insert_jobs, [job(job_id=f"l{i}", queue="lim") for i in range(60)],
              0.0, "error")  # fmt: skip
    committed(setup, setup.insert_jobs, [job(job_id=f"f{i}") for i in range(120)], 0.0, "error")
    committed(setup, setup.set_queue, "lim", {"concurrency": 2})
    claims: list[str] = []
    running_seen: list[int] = []
    done = Transition("completed", "completed", True, None, None)

    def daemon(name: str) -> None:
        store = PostgresStore(url)
        held: list = []
        idle = 0
        while idle < 10:
            store.begin()  # a batch: the ends of some runs, then a claim, as the dispatcher does
            for claimed in held[: len(held) // 2 + 1]:
                store.finish_run(claimed.seq, claimed.run, owner=name, change=done, now=2.0)
            held = held[len(held) // 2 + 1 :]
            got = store.claim_due_jobs(1.0, 3, name)
            running_seen.append(
                store.db.value(
                    "SELECT count(*) FROM jobs WHERE queue = 'lim' AND state = 'processing'"
                )
            )
            store.commit()
            claims.extend(c.id for c in got)
            held += got
            idle = 0 if got or held else idle + 1
        store.close()

    threads = [threading.Thread(target=daemon, args=(f"D{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(claims) == sorted([f"l{i}" for i in range(60)] + [f"f{i}" for i in range(120)])
    assert max(running_seen) <= 2
    assert committed(setup, setup.count_by_state)["completed"] == 180
    setup.close()


def test_a_unique_key_enqueued_by_two_daemons_at_once_is_held_once(two):
    a, b = two
    a.begin()
    first = a.insert_jobs([job(unique_key="k")], 0.0, "ignore")
    thread, out = in_thread(b, b.insert_jobs, [job(unique_key="k")], 0.0, "ignore")
    time.sleep(0.3)
    a.commit()
    thread.join(10)
    [second] = out
    assert second.ids == first.ids and second.existing == first.ids


def test_daemons_opening_an_empty_database_together_migrate_it_once(url):
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one():
        try:
            stores.append(PostgresStore(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(stores) == 3
    assert len({s.instance_id() for s in stores}) == 1
    schema = stores[0].db.value("SELECT value FROM meta WHERE key = 'schema'")
    assert schema == str(len(MIGRATIONS))
    for store in stores:
        store.close()


# -- the database and the connection ---------------------------------------------------


def test_a_database_that_is_not_queuectls_is_refused(url):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
    with pytest.raises(ForeignDatabase, match="not queuectl's"):
        open_store(url)


def test_an_unreachable_server_is_unavailable_without_showing_the_password():
    with pytest.raises(StoreUnavailable) as caught:
        open_store("postgresql://someone:hunter2@127.0.0.1:1/qctl_nowhere?connect_timeout=2")
    assert "hunter2" not in str(caught.value)
    assert redact("postgresql://u:hunter2@h/db") == "postgresql://u:***@h/db"
    assert "hunter2" not in redact("postgres://h/db?password=hunter2&sslmode=require")


def test_a_lost_connection_is_unavailable_then_opened_again(url):
    store = Contract(open_store(url))
    try:
        store.insert_jobs([job(job_id="x")], 0.0, "error")
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StoreUnavailable):
            store.job_state("x")
        assert store.job_state("x") == "pending"
    finally:
        store.close()


def test_a_url_without_psycopg_says_which_extra_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a)
    )
    with pytest.raises(RuntimeError, match=r"pip install 'queuectl\[postgres\]'"):
        open_store("postgresql://127.0.0.1/qctl_nowhere")


# -- counts ----------------------------------------------------------------------------


def test_count_deltas_are_folded_and_the_counts_stay_right(url):
    backend = PostgresStore(url)
    store = Contract(backend)
    try:
        for i in range(FOLD_AT // 2 + 10):  # two deltas each: an insert and a cancel
            store.insert_jobs([job(job_id=f"c{i}", queue=f"q{i % 3}")], 0.0, "error")
            store.cancel_waiting_job(f"c{i}", 1.0)
        store.insert_jobs([job(job_id="left")], 0.0, "error")
        counts = store.count_by_state()
        assert (counts["canceled"], counts["pending"]) == (FOLD_AT // 2 + 10, 1)
        assert store.count_by_state() == counts  # read again after the fold
        assert backend.db.value("SELECT count(*) FROM job_counts") <= 4
        assert store.queue_counts("q1")["canceled"] == sum(
            1 for i in range(FOLD_AT // 2 + 10) if i % 3 == 1
        )
    finally:
        store.close()


def test_a_bad_location_is_refused_without_showing_the_password():
    with pytest.raises(ValueError, match="bad PostgreSQL location") as caught:
        open_store("postgresql://someone:hunter2@127.0.0.1/qctl_nowhere?no_such_option=1")
    assert "hunter2" not in str(caught.value)


def test_waiting_too_long_for_another_daemon_is_unavailable(url):
    a = PostgresStore(url)
    b = PostgresStore(url + "?options=-c%20lock_timeout%3D200ms")  # the location's own wins
    try:
        committed(a, a.insert_jobs, [job(job_id="x")], 0.0, "error")
        a.begin()
        a.edit_job("x", {"priority": 1}, 1.0)  # holds the row until it commits
        b.begin()
        with pytest.raises(StoreUnavailable):
            b.edit_job("x", {"priority": 2}, 1.0)
        b.rollback()
        a.commit()
    finally:
        a.close()
        b.close()


# -- the cost of a claim ---------------------------------------------------------------


def _claim_buffers(backend: PostgresStore) -> int:
    """Shared buffers one claim statement reads (rolled back): a measure of rows
    visited that, unlike wall time, does not depend on the machine's load."""
    from queuectld.store.postgres.queues import _CLAIM

    backend.begin()
    try:
        plan = backend.db.all(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + _CLAIM,
            {"now": 10.0, "limit": 4, "owner": "A", "locked": []},
        )
    finally:
        backend.rollback()
    return plan[0][0][0]["Plan"]["Shared Hit Blocks"] + plan[0][0][0]["Plan"]["Shared Read Blocks"]


def test_claiming_does_not_walk_delayed_or_paused_backlogs(url):
    backend = PostgresStore(url)
    store = Contract(backend)
    try:
        # 30,000 delayed jobs of high priority and 30,000 due jobs of a paused queue.
        later = [
            job(job_id=f"later{i}", queue="q", priority=9, run_at=1e9 + i) for i in range(30_000)
        ]
        store.insert_jobs(later, 0.0, "error")
        store.insert_jobs(
            [job(job_id=f"held{i}", queue="held") for i in range(30_000)], 0.0, "error"
        )
        store.set_queue("held", {"paused": True})
        store.insert_jobs([job(job_id="now", queue="q", priority=1)], 0.0, "error")
        # As autovacuum would have by now: without statistics the planner guesses.
        backend.db.execute("ANALYZE jobs")
        _claim_buffers(backend)  # the first call also reads the catalog
        assert _claim_buffers(backend) < 100  # one ordered scan past the backlog reads ~200
        assert [c.id for c in store.claim_due_jobs(10.0, 4, "A")] == ["now"]
    finally:
        store.close()


def test_leases_are_kept_on_the_servers_clock_not_the_hosts(url, monkeypatch):
    # Several hosts' clocks disagree; the one server's clock is the same for all.
    store = PostgresStore(url)
    try:
        monkeypatch.setattr(time, "time", lambda: 0.0)
        assert store.lease_clock() > 1.6e9
    finally:
        store.close()


def test_each_announced_rule_change_raises_the_count_polling_daemons_compare(two):
    a, b = two
    before = b.rules_version()
    a.begin()
    a.announce_rules("daemon-a")
    a.commit()
    a.begin()
    a.announce_rules("daemon-a")
    a.commit()
    assert b.rules_version() == before + 2
