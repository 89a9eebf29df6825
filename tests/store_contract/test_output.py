"""Runs' captured output kept in the store: a shared store holds it for every
daemon (and deletes it with the job); a store of its own keeps nothing, its
daemon's log files being the output."""

from __future__ import annotations

from tests.store_contract.conftest import add, claim, finish, job


def ships(store) -> bool:
    return store._runner.store.ships_output


def test_output_pieces_read_back_in_order_up_to_a_gap(store):
    add(store, [job(job_id="out")])
    claim(store)
    seq, run, _, _ = store.job_log_path("out", None)
    store.append_output([(seq, run, 0, b"hello "), (seq, run, 6, b"world\n")])
    store.append_output([(seq, run, 6, b"WORLD\n")])  # already there: kept as it was
    store.append_output([(seq, run, 20, b"after a gap")])
    if not ships(store):
        assert store.read_output(seq, run, 0, 100) == b""
        assert store.output_size(seq, run) == 0
        return
    assert store.read_output(seq, run, 0, 100) == b"hello world\n"
    assert store.read_output(seq, run, 3, 5) == b"lo wo"
    assert store.read_output(seq, run, 12, 100) == b""
    assert store.read_output(seq, run + 1, 0, 100) == b""
    assert store.output_size(seq, run) == 12


def test_output_goes_with_its_purged_job(store):
    add(store, [job(job_id="old")])
    claim(store)
    seq, run, _, _ = store.job_log_path("old", None)
    store.append_output([(seq, run, 0, b"bye")])
    finish(store, "old", "completed", now=11)
    assert store.purge_jobs("completed", 100.0, None, 100)[0] == 1
    assert store.read_output(seq, run, 0, 100) == b""
