"""Jobs that wait for others (`after`) and jobs that share a unique key: what a
dependency's end does to its dependents, and who holds a key."""

from __future__ import annotations

import pytest

from queuectld.store import StoreError
from tests.store_contract.conftest import add, claim, finish, job


def test_dependency_chain_cascades_cancel_when_middle_dies(store):
    add(store, [job(job_id="a"), job(job_id="b", after=["a"]), job(job_id="c", after=["b"])])
    add(store, [job(job_id="d", after=["c", "a"])])
    assert claim(store) == ["a"]  # b, c, d wait
    assert finish(store, "a", "completed") == []
    assert claim(store) == ["b"]
    assert finish(store, "b", "dead") == ["c", "d"]
    c = store.get_job("c", False)
    assert (c.state, c.last_error) == ("canceled", "dependency b ended dead")
    d = store.get_job("d", False)
    assert (d.state, d.last_error) == ("canceled", "dependency c ended canceled")
    assert d.after == ("c", "a")


def test_batch_may_name_later_jobs_and_rejects_cycles_and_unknown_ids(store):
    ids = add(store, [job(job_id="late", after=["early"]), job(job_id="early")])
    assert ids == ["late", "early"]
    assert claim(store) == ["early"]
    with pytest.raises(StoreError, match="does not exist"):
        add(store, [job(job_id="x", after=["ghost"])])
    with pytest.raises(StoreError, match="cycle: p -> q -> r -> p"):
        add(
            store,
            [
                job(job_id="p", after=["q"]),
                job(job_id="q", after=["r"]),
                job(job_id="r", after=["p"]),
            ],
        )
    with pytest.raises(StoreError, match="after itself"):
        add(store, [job(job_id="self", after=["self"])])
    assert store.get_job("p", False) is None  # the batch was all or nothing


def test_dependency_already_finished_at_enqueue(store):
    add(store, [job(job_id="ok"), job(job_id="bad")])
    claim(store)
    finish(store, "ok", "completed")
    finish(store, "bad", "dead")
    add(store, [job(job_id="after-ok", after=["ok"]), job(job_id="after-bad", after=["bad"])], 20)
    assert claim(store, now=30) == ["after-ok"]
    assert store.get_job("after-bad", False).last_error == "dependency bad ended dead"


def test_cancel_cascades_and_retry_waits_for_dependencies_again(store):
    add(store, [job(job_id="a", run_at=100), job(job_id="b", after=["a"])])
    record = store.cancel_waiting_job("a", 1.0)
    assert record.dependents == ["b"]
    with pytest.raises(StoreError, match="dependency 'a' is canceled; retry that first"):
        store.retry_job("b", 2.0)
    store.retry_job("a", 2.0)
    store.retry_job("b", 2.0)
    assert claim(store) == ["a"]  # b waits for the new run of a
    finish(store, "a", "completed")
    assert claim(store) == ["b"]


# -- unique keys --------------------------------------------------------------------


def test_unique_key_returns_the_live_holder_until_it_finishes(store):
    first = store.insert_jobs([job(unique_key="k")], 0, "ignore")
    second = store.insert_jobs([job(unique_key="k")], 0, "ignore")
    assert second.ids == first.ids and second.existing == first.ids
    with pytest.raises(StoreError, match="unique key 'k' is held by job"):
        store.insert_jobs([job(unique_key="k")], 0, "error")
    claim(store)
    again = store.insert_jobs([job(unique_key="k")], 0, "ignore")
    assert again.ids == first.ids  # processing still holds it
    finish(store, first.ids[0], "completed")
    fresh = store.insert_jobs([job(unique_key="k")], 0, "ignore")
    assert fresh.ids != first.ids and fresh.existing == []
    # A finished holder cannot be retried while the key is held again.
    with pytest.raises(StoreError, match="unique key 'k' is held by job"):
        store.retry_job(first.ids[0], 30)


def test_a_finished_job_does_not_hold_its_unique_key(store):
    add(store, [job(job_id="holder", unique_key="k")])
    with pytest.raises(StoreError, match="unique key 'k' is held by job 'holder'"):
        store.insert_jobs([job(job_id="raw", unique_key="k")], 0, "error")
    claim(store)
    finish(store, "holder", "dead")
    assert add(store, [job(job_id="next", unique_key="k")]) == ["next"]
