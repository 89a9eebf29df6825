"""The attempt state machine: what becomes of a job when one of its attempts ends.

One pure function decides it for every path that ends an attempt: the
dispatcher (a worker reported), start-up recovery (the daemon died while the job
ran) and the rescue of runs whose daemon lost its lease. The rows, in order:

| how the attempt ended              | job becomes | run outcome  | counted | run_at         |
|------------------------------------|-------------|--------------|---------|----------------|
| exit code 0                        | completed   | completed    | yes     | unchanged      |
| canceled by the user while running | canceled    | canceled     | no      | unchanged      |
| interrupted (stop --now, a daemon  | pending     | interrupted  | no      | now            |
| that died or lost its lease)       |             |              |         |                |
| failed or timed out, retries left  | failed      | as reported  | yes     | now + backoff  |
| failed or timed out, none left     | dead        | as reported  | yes     | unchanged      |

An interruption is not the job's fault, so it uses up no retry and waits for no
backoff; a cancel is final and does not count either.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from queuectld.store.base import Transition


class Stop(enum.Enum):
    """Why the daemon ended an attempt itself, if it did."""

    CANCELED = "canceled by user"
    INTERRUPTED = "interrupted by stop --now"
    DAEMON_STOPPED = "the daemon stopped while the job ran"
    DAEMON_LOST = "interrupted: daemon lost"
    # The daemon could not renew its lease in time and killed its own job, before
    # another daemon could take the run and start it again.
    LEASE_LOST = "interrupted: lease not renewed"


def next_state(
    *,
    outcome: str | None,
    error: str | None,
    stop: Stop | None,
    attempts: int,
    max_retries: int,
    now: float,
    backoff: Callable[[int], float],
) -> Transition:
    """Decide the transition for an attempt that ended.

    `outcome` is what the worker reported (`completed`, `failed`, `timeout`,
    `killed`, `spawn_error`, ...; None when no worker reported), `attempts` the
    counted attempts before this one, `backoff(n)` the delay before attempt n+1.
    """
    if outcome == "completed":
        return Transition("completed", "completed", True, None, error)
    if stop is Stop.CANCELED:
        return Transition("canceled", "canceled", False, None, error or stop.value)
    if stop is not None:
        return Transition("pending", "interrupted", False, now, error or stop.value)
    reported = outcome or "failed"
    attempt = attempts + 1
    if attempt <= max_retries:
        return Transition("failed", reported, True, now + backoff(attempt), error)
    return Transition("dead", reported, True, None, error)


def interrupted(stop: Stop, now: float) -> Transition:
    """The transition of a run ended by the daemon, whatever the job's counts."""
    return next_state(
        outcome=None, error=None, stop=stop, attempts=0, max_retries=0, now=now, backoff=_never
    )


def _never(attempt: int) -> float:  # an interruption waits for no backoff
    return 0.0
