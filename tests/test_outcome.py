"""The attempt state machine, one test per row of its table (engine/outcome.py)."""

import pytest

from queuectld.engine.outcome import Stop, Transition, interrupted, next_state


def decide(outcome, stop=None, attempts=0, max_retries=3, error=None):
    return next_state(
        outcome=outcome,
        error=error,
        stop=stop,
        attempts=attempts,
        max_retries=max_retries,
        now=100.0,
        backoff=lambda n: 2.0**n,
    )


def test_exit_code_zero_completes_and_counts():
    assert decide("completed") == Transition("completed", "completed", True, None, None)


def test_completed_wins_over_a_cancel_that_came_too_late():
    assert decide("completed", stop=Stop.CANCELED).state == "completed"


def test_a_cancel_while_running_is_final_and_not_counted():
    assert decide("killed", stop=Stop.CANCELED, error="canceled by user") == Transition(
        "canceled", "canceled", False, None, "canceled by user"
    )


@pytest.mark.parametrize("stop", [Stop.INTERRUPTED, Stop.DAEMON_STOPPED, Stop.DAEMON_LOST])
def test_an_interruption_requeues_at_once_without_using_a_retry(stop):
    # Even with no retries left: an interruption is not the job's fault.
    assert decide("killed", stop=stop, attempts=3, max_retries=3) == Transition(
        "pending", "interrupted", False, 100.0, stop.value
    )


def test_a_failure_with_retries_left_waits_for_its_backoff():
    assert decide("failed", attempts=1, error="exit code 1") == Transition(
        "failed", "failed", True, 104.0, "exit code 1"
    )


def test_a_timeout_with_retries_left_is_retried_and_keeps_its_outcome():
    assert decide("timeout", attempts=0, error="timed out after 1 s") == Transition(
        "failed", "timeout", True, 102.0, "timed out after 1 s"
    )


def test_the_last_failure_makes_the_job_dead():
    assert decide("failed", attempts=3, max_retries=3, error="exit code 2") == Transition(
        "dead", "failed", True, None, "exit code 2"
    )


def test_no_retries_at_all_means_dead_on_the_first_failure():
    assert decide("timeout", attempts=0, max_retries=0).state == "dead"


def test_a_worker_that_died_without_reporting_counts_as_a_failure():
    assert decide(None, error="worker process died").outcome == "failed"


def test_the_recovery_and_rescue_transition_needs_no_job():
    assert interrupted(Stop.DAEMON_LOST, 5.0) == Transition(
        "pending", "interrupted", False, 5.0, "interrupted: daemon lost"
    )
