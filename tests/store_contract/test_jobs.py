"""A job's life through the store: insert, claim, finish, release, cancel, retry,
edit and purge, and the counts that follow every one of them."""

from __future__ import annotations

from collections import Counter

import pytest

from queuectld.store import StoreError, Transition
from tests.store_contract.conftest import (
    OWNER,
    add,
    claim,
    end_run,
    finish,
    insert_every_kind,
    job,
    purge_beside_a_job_that_stays,
)


def test_counts_follow_every_transition(store):
    add(store, [job(job_id=str(i)) for i in range(5)])
    [first] = store.claim_due_jobs(1.0, 1, OWNER)
    store.finish_run(
        first.seq,
        first.run,
        owner=OWNER,
        change=Transition("dead", "failed", True, None, "exit code 1"),
        now=2.0,
        exit_code=1,
    )
    store.cancel_waiting_job("3", 2.0)
    assert store.count_by_state() == {
        "pending": 3,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "dead": 1,
        "canceled": 1,
    }
    assert store.retry_dead_jobs(None, 3.0) == [first.id]
    assert store.count_by_state()["pending"] == 4


def test_duplicate_id_conflicts_and_rolls_back_the_batch(store):
    add(store, [job(job_id="a")])
    with pytest.raises(StoreError) as caught:
        add(store, [job(job_id="b"), job(job_id="a")])
    assert caught.value.code == "conflict"
    assert store.get_job("b") is None


def test_a_taken_id_the_client_chose_is_refused(store):
    add(store, [job(job_id="aaaaaaaaaaaa")])
    with pytest.raises(StoreError, match="already exists"):
        add(store, [job(), job(job_id="aaaaaaaaaaaa")])
    with pytest.raises(StoreError, match="already exists"):
        add(store, [job(unique_key="k"), job(job_id="aaaaaaaaaaaa")])
    assert store.count_by_state()["pending"] == 1


def test_generated_ids_are_distinct(store):
    ids = add(store, [job() for _ in range(50)])
    ids += add(store, [job(unique_key="k"), job(after=[ids[0]])])
    assert len(set(ids)) == 52
    assert store.count_by_state()["pending"] == 52


def test_a_claimed_job_carries_its_submitters_environment(store):
    add(store, [job() for _ in range(50)])
    claimed = store.claim_due_jobs(1.0, 1, OWNER)
    assert claimed[0].environ == {"PATH": "/bin"}


def test_job_env_is_merged_over_the_submitters(store):
    add(store, [job(env={"PATH": "/opt", "X": "1"})])
    [claimed] = store.claim_due_jobs(1.0, 1, OWNER)
    assert claimed.environ == {"PATH": "/opt", "X": "1"}


def test_released_claims_leave_jobs_as_if_never_claimed(store):
    add(store, [job(job_id="fresh"), job(job_id="retried")])
    claimed = {c.id: c for c in store.claim_due_jobs(1.0, 2, OWNER)}
    end_run(store, claimed["retried"], "failed", now=2.0, run_at=3.0, exit_code=1)
    before = store.get_job("retried")
    [again] = store.claim_due_jobs(4.0, 1, OWNER)
    assert (again.id, again.run, again.prior_state) == ("retried", 2, "failed")
    fresh = claimed["fresh"]
    assert fresh.prior_state == "pending"
    store.release_claims([(fresh.seq, fresh.run, "pending")], OWNER, 5.0)
    store.release_claims([(again.seq, again.run, "failed")], OWNER, 5.0)

    after = store.get_job("retried")
    for key in ("state", "attempts", "started_at", "history"):
        assert getattr(after, key) == getattr(before, key), key
    plain = store.get_job("fresh")
    assert (plain.state, plain.started_at, plain.history) == ("pending", None, ())
    counts = store.count_by_state()
    assert (counts["pending"], counts["failed"], counts["processing"]) == (1, 1, 0)
    # Claimed again, they get the same run numbers: nothing of the released runs is left.
    assert sorted((c.id, c.run) for c in store.claim_due_jobs(6.0, 2, OWNER)) == [
        ("fresh", 1),
        ("retried", 2),
    ]


def test_a_release_after_the_run_ended_changes_nothing(store):
    add(store, [job(job_id="done")])
    [claimed] = store.claim_due_jobs(1.0, 1, OWNER)
    end_run(store, claimed, "completed", now=2.0, exit_code=0)
    store.release_claims([(claimed.seq, claimed.run, "pending")], OWNER, 3.0)
    record = store.get_job("done")
    assert record.state == "completed" and len(record.history) == 1


# -- retry, edit, purge ---------------------------------------------------------------


def test_retry_keeps_history_and_refuses_unfinished_jobs(store):
    add(store, [job(job_id="r", max_retries=0)])
    with pytest.raises(StoreError, match="it is pending"):
        store.retry_job("r", 1)
    claim(store)
    finish(store, "r", "completed")
    record = store.retry_job("r", 12.0)
    assert (record.state, record.runs, record.attempts) == ("pending", 1, 0)
    assert claim(store, now=13) == ["r"]
    assert store.get_job("r").history[-1].run == 2


def test_edit_changes_a_pending_job_and_refuses_one_that_started(store):
    add(store, [job(job_id="e", max_retries=0, run_at=100)])
    record = store.edit_job("e", {"command": "echo new", "priority": 4}, 1.0)
    assert (record.command, record.priority) == ("echo new", 4)
    store.edit_job("e", {"run_at": 5.0}, 1.0)
    assert claim(store) == ["e"]
    with pytest.raises(StoreError, match="it is processing and it has started"):
        store.edit_job("e", {"priority": 1}, 11.0)


def test_purge_deletes_old_finished_jobs_with_their_runs(store):
    add(store, [job(job_id="old"), job(job_id="new"), job(job_id="dep", after=["old"])])
    claim(store)
    finish(store, "old", "completed", now=11)
    finish(store, "new", "completed", now=500)
    count, _ = store.purge_jobs("completed", 100.0, None, 100)
    assert count == 1
    assert store.get_job("old", False) is None
    with pytest.raises(StoreError) as caught:
        store.job_log_path("old", 1)  # its run went with it
    assert caught.value.code == "not_found"
    assert len(store.get_job("new").history) == 1
    assert claim(store, now=600) == ["dep"]  # a purged dependency holds nothing back
    with pytest.raises(StoreError, match="only finished jobs"):
        store.purge_jobs("pending", 100.0, None, 100)


def test_purge_keeps_the_environment_of_jobs_that_remain(store):
    purge_beside_a_job_that_stays(store)
    assert store.get_job("stays", False).state == "pending"
    [claimed] = store.claim_due_jobs(1000.0, 1, OWNER)
    assert (claimed.id, claimed.environ, claimed.cwd) == ("stays", {"PATH": "/bin"}, "/")


def test_a_whole_job_says_where_and_with_which_variables_of_its_own_it_runs(store):
    add(store, [job(job_id="e", cwd="/tmp", env={"TOKEN": "x", "MODE": "fast"}), job(job_id="p")])
    whole = store.get_job("e")
    assert (whole.cwd, whole.env) == ("/tmp", {"TOKEN": "x", "MODE": "fast"})
    assert (store.get_job("p").cwd, store.get_job("p").env) == ("/", {})
    brief = store.get_job("e", False)  # the short form, as pages of list_jobs
    assert (brief.cwd, brief.env) == (None, None)


def test_list_jobs_pages_through_the_states_and_queue_asked_for(store):
    add(store, [job(job_id=f"j{i}", queue="q" if i % 2 else "default") for i in range(6)])
    end_run(store, store.claim_due_jobs(10.0, 2, OWNER)[0], "dead", now=11.0)  # j0
    page, cursor = store.list_jobs(["dead", "pending"], None, 3, None)
    assert ([j.id for j in page], page[0].state) == (["j0", "j2", "j3"], "dead")
    page, cursor = store.list_jobs(["dead", "pending"], None, 3, cursor)
    assert ([j.id for j in page], cursor) == (["j4", "j5"], None)
    page, _ = store.list_jobs(["processing"], "q", 10, None)
    assert [j.id for j in page] == ["j1"]


# -- counts kept by the store -------------------------------------------------------


def _counts_by_scan(store):
    """Counts by queue and state, and by state, from every job record."""
    records, cursor = [], None
    while True:
        page, cursor = store.list_jobs(None, None, 100, cursor)
        records += page
        if cursor is None:
            break
    by_queue = Counter((r.queue, r.state) for r in records)
    return by_queue, Counter(r.state for r in records)


def _counts_kept(store, queues):
    by_queue = {
        (queue, state): n
        for queue in queues
        for state, n in store.queue_counts(queue).items()
        if n > 0
    }
    by_state = {state: n for state, n in store.count_by_state().items() if n > 0}
    return by_queue, by_state


def test_inserted_jobs_are_counted_per_batch_and_a_failed_insert_counts_nothing(store):
    insert_every_kind(store)
    assert _counts_kept(store, ["default", "mail"]) == _counts_by_scan(store)
    assert store.count_by_state()["canceled"] == 3


# -- figures for people watching -----------------------------------------------------


def test_stats_per_minute_counts_the_hour_minute_by_minute(store):
    add(store, [job(job_id=f"m{i}", max_retries=5) for i in range(4)])
    claimed = {c.id: c for c in store.claim_due_jobs(10.0, 4, OWNER)}
    end_run(store, claimed["m0"], "completed", now=100.0)  # before the hour: not counted
    end_run(store, claimed["m1"], "completed", now=3650.0)  # minute 0 of the hour
    end_run(store, claimed["m2"], "failed", now=3700.0, run_at=9999.0)  # minute 1
    end_run(store, claimed["m3"], "completed", now=7200.0)  # at `now`: the last minute
    minutes = store.run_stats(7200.0, None, True)["per_minute"]
    assert len(minutes) == 60 and minutes[0]["start"] == "1970-01-01T01:00:00.000Z"
    counts = [(m["completed"], m["failed"]) for m in minutes]
    assert counts[0] == (1, 0) and counts[1] == (0, 1) and counts[59] == (1, 0)
    assert sum(c + f for c, f in counts) == 3
    assert "per_minute" not in store.run_stats(7200.0)
