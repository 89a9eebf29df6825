"""Several daemons on one store: claims have owners, transitions are fenced, and the
runs of a daemon whose lease expired are rescued by another (engine/lease.py).

On SQLite only one daemon uses a store, but the store must keep these rules all
the same: they are what a shared backend is checked against.
"""

from __future__ import annotations

import time

from queuectld.engine.outcome import Stop, interrupted
from queuectld.store import FleetFigures, Transition
from tests.store_contract.conftest import job

A, B = "daemon-a", "daemon-b"
LEASE = 30.0
COMPLETED = Transition("completed", "completed", True, None, None)


def two_daemons(store, now=0.0):
    store.register_daemon(A, "host-a", 101, now)
    store.register_daemon(B, "host-b", 202, now)


def test_each_claim_records_its_owner(store):
    two_daemons(store)
    store.insert_jobs([job(job_id="x"), job(job_id="y")], 0.0, "error")
    [x] = store.claim_due_jobs(1.0, 1, A)
    [y] = store.claim_due_jobs(1.0, 1, B)
    assert [r.id for r in store.running_attempts(A)] == [x.id]
    assert [r.id for r in store.running_attempts(B)] == [y.id]
    assert store.running_attempts(A)[0].owner == A


def test_two_owners_never_hold_the_same_job(store):
    two_daemons(store)
    store.insert_jobs([job(job_id=f"j{i}") for i in range(7)], 0.0, "error")
    taken = []
    for owner in (A, B, A, B):
        taken += [c.id for c in store.claim_due_jobs(1.0, 2, owner)]
    assert sorted(taken) == [f"j{i}" for i in range(7)]
    assert store.claim_due_jobs(1.0, 5, B) == []


def test_a_finish_by_another_owner_is_rejected_and_changes_nothing(store):
    two_daemons(store)
    store.insert_jobs([job(job_id="x")], 0.0, "error")
    [claimed] = store.claim_due_jobs(1.0, 1, A)
    ended = store.finish_run(claimed.seq, claimed.run, owner=B, change=COMPLETED, now=2.0)
    assert not ended.applied
    assert store.get_job("x").state == "processing"
    assert store.finish_run(claimed.seq, claimed.run, owner=A, change=COMPLETED, now=3.0).applied
    assert store.get_job("x").state == "completed"


def test_a_second_finish_of_the_same_run_is_rejected(store):
    store.register_daemon(A, "host-a", 101, 0.0)
    store.insert_jobs([job(job_id="x", max_retries=0)], 0.0, "error")
    [claimed] = store.claim_due_jobs(1.0, 1, A)
    assert store.finish_run(claimed.seq, claimed.run, owner=A, change=COMPLETED, now=2.0).applied
    dead = Transition("dead", "failed", True, None, "exit code 1")
    again = store.finish_run(claimed.seq, claimed.run, owner=A, change=dead, now=3.0)
    assert not again.applied
    record = store.get_job("x")
    assert record.state == "completed" and record.attempts == 1
    assert record.history[0].outcome == "completed"


def test_a_release_by_another_owner_leaves_the_claim_alone(store):
    two_daemons(store)
    store.insert_jobs([job(job_id="x")], 0.0, "error")
    [claimed] = store.claim_due_jobs(1.0, 1, A)
    store.release_claims([(claimed.seq, claimed.run, "pending")], B, 2.0)
    assert store.get_job("x").state == "processing"
    store.release_claims([(claimed.seq, claimed.run, "pending")], A, 2.0)
    assert store.get_job("x").state == "pending"


def test_nothing_is_rescued_while_the_owner_keeps_its_lease(store):
    two_daemons(store)
    store.insert_jobs([job(job_id="x")], 0.0, "error")
    store.claim_due_jobs(1.0, 1, A)
    assert store.beat(A, 20.0)
    change = interrupted(Stop.DAEMON_LOST, 40.0)
    assert store.rescue_expired_runs(B, LEASE, 40.0, change) == []
    assert store.get_job("x").state == "processing"


def test_expired_daemons_runs_are_rescued_and_its_late_result_is_rejected(store):
    two_daemons(store)
    store.insert_jobs([job(job_id="x"), job(job_id="mine")], 0.0, "error")
    [lost] = store.claim_due_jobs(1.0, 1, A)
    [kept] = store.claim_due_jobs(1.0, 1, B)
    assert store.beat(B, 40.0)  # A stopped beating at 0

    rescued = store.rescue_expired_runs(B, LEASE, 40.0, interrupted(Stop.DAEMON_LOST, 40.0))
    assert [(r.id, r.owner) for r in rescued] == [("x", A)]
    record = store.get_job("x")
    assert record.state == "pending" and record.attempts == 0  # not counted
    assert record.history[0].outcome == "interrupted"
    assert record.history[0].error == "interrupted: daemon lost"
    assert store.get_job("mine").state == "processing"  # the rescuer's own run
    assert [d.id for d in store.daemons()] == [B]
    assert not store.beat(A, 41.0)  # A learns it lost its registration

    # B runs the rescued job again; A's result for the old run arrives late.
    [again] = store.claim_due_jobs(41.0, 1, B)
    assert (again.id, again.run) == ("x", lost.run + 1)
    late = store.finish_run(lost.seq, lost.run, owner=A, change=COMPLETED, now=42.0, exit_code=0)
    assert not late.applied
    record = store.get_job("x")
    assert record.state == "processing"
    first, second = record.history
    assert first.outcome == "interrupted"  # never written over
    assert first.late_result["owner"] == A
    assert first.late_result["outcome"] == "completed"
    assert second.outcome == "running"
    assert store.finish_run(again.seq, again.run, owner=B, change=COMPLETED, now=43.0).applied
    assert store.get_job("x").state == "completed"


def test_runs_of_an_owner_with_no_registration_are_rescued(store):
    store.register_daemon(B, "host-b", 202, 0.0)
    store.insert_jobs([job(job_id="x")], 0.0, "error")
    store.claim_due_jobs(1.0, 1, "gone")  # its daemon left the store without its runs
    rescued = store.rescue_expired_runs(B, LEASE, 2.0, interrupted(Stop.DAEMON_LOST, 2.0))
    assert [r.id for r in rescued] == ["x"]
    assert store.get_job("x").state == "pending"


def test_a_daemon_registers_again_with_a_fresh_heartbeat(store):
    store.register_daemon(A, "host-a", 101, 0.0)
    store.register_daemon(A, "host-a", 303, 50.0)
    [record] = store.daemons()
    assert (record.id, record.host, record.pid, record.started_at, record.heartbeat_at) == (
        A, "host-a", 303, 50.0, 50.0,
    )  # fmt: skip
    store.unregister_daemon(A)
    assert store.daemons() == []


def test_a_heartbeat_records_the_daemons_fleet_for_the_others_to_see(store):
    store.register_daemon(A, "host-a", 101, 0.0)
    store.register_daemon(B, "host-b", 202, 0.0, FleetFigures(busy=0, idle=2, target=2))
    assert [d.workers for d in store.daemons()] == [None, FleetFigures(0, 2, 2)]
    assert store.beat(A, 5.0, FleetFigures(busy=3, idle=1, target=4))
    assert store.beat(B, 6.0)  # a beat without figures keeps the last ones
    a, b = store.daemons()
    assert (a.heartbeat_at, a.workers) == (5.0, FleetFigures(3, 1, 4))
    assert (b.heartbeat_at, b.workers) == (6.0, FleetFigures(0, 2, 2))


def test_each_run_says_which_daemon_ran_it_and_keeps_the_id_when_it_is_gone(store):
    two_daemons(store)
    store.insert_jobs([job(job_id="x", max_retries=1)], 0.0, "error")
    [first] = store.claim_due_jobs(1.0, 1, A)
    failed = Transition("failed", "failed", True, 2.0, "exit code 1")
    assert store.finish_run(first.seq, first.run, owner=A, change=failed, now=2.0).applied
    store.claim_due_jobs(3.0, 1, B)
    store.unregister_daemon(A)
    runs = store.get_job("x").history
    assert [(r.owner, r.host) for r in runs] == [(A, None), (B, "host-b")]


def test_a_cancel_requested_elsewhere_marks_the_run_for_its_owner(store):
    two_daemons(store)
    store.insert_jobs([job(job_id="x"), job(job_id="y"), job(job_id="z")], 0.0, "error")
    [x] = store.claim_due_jobs(1.0, 1, A)
    store.claim_due_jobs(1.0, 1, B)
    assert store.request_cancel("x", 2.0) == A
    assert store.request_cancel("z", 2.0) is None  # not running: nobody to ask
    assert store.request_cancel("nope", 2.0) is None
    assert store.cancel_requests(A) == ["x"]
    assert store.cancel_requests(B) == []
    assert store.finish_run(x.seq, x.run, owner=A, change=COMPLETED, now=3.0).applied
    assert store.cancel_requests(A) == []  # ended: the request is spent
    assert store.request_cancel("x", 4.0) is None


def test_the_lease_clock_reads_seconds_since_the_epoch(store):
    # Heartbeats are stamped with it and rescues compare with it (engine/lease.py).
    first = store.lease_clock()
    second = store.lease_clock()
    assert abs(first - time.time()) < 60 and second >= first
