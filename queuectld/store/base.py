"""The storage interface every backend implements.

The daemon calls these methods from one thread only (see `runner.py`), inside
transactions that the runner opens and commits, so a backend needs no locking
of its own and many calls share one commit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class StoreError(Exception):
    """A request the store refuses: unknown job, duplicate id, wrong state."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class StoreUnavailable(Exception):
    """The store cannot serve right now (locked, disk full, read-only); retry later."""


@dataclass
class NewJob:
    id: str | None
    command: str
    max_retries: int
    priority: int
    run_at: float
    timeout: float
    queue: str
    cwd: str
    environ: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ClaimedJob:
    """A job moved to `processing`, with what a worker needs to run it."""

    seq: int
    id: str
    command: str
    queue: str
    attempts: int
    max_retries: int
    timeout: float
    run: int
    cwd: str
    environ: dict[str, str]
    due_at: float | None = None  # when this attempt became due: its wait is start - due_at


@dataclass
class RunningAttempt:
    """A run the store still marks as in progress (for recovery after a crash)."""

    seq: int
    id: str
    run: int
    pid: int | None
    pid_started: float | None


class Store(ABC):
    # Transactions, driven by the runner: one per batch of calls, one savepoint per call.
    @abstractmethod
    def begin(self) -> None: ...
    @abstractmethod
    def commit(self) -> None: ...
    @abstractmethod
    def rollback(self) -> None: ...
    @abstractmethod
    def savepoint(self) -> None: ...
    @abstractmethod
    def release(self) -> None: ...
    @abstractmethod
    def rollback_savepoint(self) -> None: ...
    @abstractmethod
    def close(self) -> None: ...

    # Jobs
    @abstractmethod
    def add_jobs(self, jobs: list[NewJob], now: float) -> list[str]:
        """Insert jobs (all or none); raise StoreError('conflict') on a duplicate id."""

    @abstractmethod
    def claim_due_jobs(self, now: float, limit: int) -> list[ClaimedJob]:
        """Move up to `limit` due jobs to processing, highest priority then earliest due."""

    @abstractmethod
    def next_due_time(self) -> float | None:
        """When the earliest waiting job becomes due (None when nothing waits)."""

    @abstractmethod
    def record_run_process(
        self, seq: int, run: int, worker: int, pid: int, pid_started: float, now: float
    ) -> None: ...

    @abstractmethod
    def finish_run(
        self,
        seq: int,
        run: int,
        *,
        state: str,
        outcome: str,
        counted: bool,
        now: float,
        run_at: float | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
        error: str | None = None,
        log_path: str | None = None,
    ) -> None:
        """Close a run and move its job to `state`."""

    @abstractmethod
    def job_state(self, job_id: str) -> str | None: ...

    @abstractmethod
    def job_log_path(self, job_id: str, run: int | None) -> tuple[int, int, str, str | None]:
        """(seq, run number, job state, log path) of the given or latest run."""

    @abstractmethod
    def running_attempts(self) -> list[RunningAttempt]: ...

    @abstractmethod
    def get_job(self, job_id: str, history: bool = True) -> dict | None: ...

    @abstractmethod
    def list_jobs(
        self, state: str | None, queue: str | None, limit: int, after: int | None
    ) -> tuple[list[dict], int | None]:
        """A page of job records in creation order, and the cursor of the next page."""

    @abstractmethod
    def count_by_state(self) -> dict[str, int]: ...

    @abstractmethod
    def cancel_waiting_job(self, job_id: str, now: float) -> dict:
        """Cancel a pending or retry-waiting job; StoreError if it is in any other state."""

    @abstractmethod
    def retry_dead_jobs(self, job_id: str | None, now: float) -> list[str]:
        """Move one dead job (or every dead job when job_id is None) back to pending."""

    # Figures for people watching (stats, live view, shell completion)
    @abstractmethod
    def run_stats(self, now: float, queue: str | None = None) -> dict:
        """Throughput, success and timing of attempts that ended recently (see stats op)."""

    @abstractmethod
    def next_waiting_jobs(self, limit: int) -> list[dict]:
        """Pending and retry-waiting jobs, soonest due first."""

    @abstractmethod
    def job_ids_with_prefix(self, prefix: str, states: list[str] | None, limit: int) -> list[str]:
        """Job ids starting with `prefix` (in these states), in id order."""

    # Settings
    @abstractmethod
    def config_items(self) -> dict[str, str]: ...
    @abstractmethod
    def set_config(self, key: str, value: str) -> None: ...
