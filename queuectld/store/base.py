"""The storage interface every backend implements.

Each daemon calls these methods from one thread only (see `runner.py`), inside
transactions that the runner opens and commits, so a backend needs no locking
of its own within a daemon and many calls share one commit. Several daemons may
share a store: every run has an owner (the daemon that claimed it) and every
transition of a run is fenced by it, so that what one daemon writes never lands
on another's attempt. `tests/store_contract/` is the suite each backend passes.
"""

from __future__ import annotations

import time
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


class ForeignDatabase(Exception):
    """The store exists but is not a queuectl store this version can use."""


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
    run_uid: int | None = None  # run as this local user (root daemon only)
    run_gid: int | None = None
    # Ids of jobs that must complete before this one may start.
    after: list[str] = field(default_factory=list)
    # At most one pending, retry-waiting or processing job holds a given key.
    unique_key: str | None = None


@dataclass
class Enqueued:
    """What `insert_jobs` did: the id of every job, in order, and which were already there."""

    ids: list[str]
    existing: list[str] = field(default_factory=list)


@dataclass
class Schedule:
    """A recurring job: `job` is the template (a job spec without id or timing)."""

    name: str
    cron: str
    tz: str
    catch_up: str
    paused: bool
    job: dict
    cwd: str
    environ: dict[str, str]
    created_at: float
    fired_through: float
    next_fire: float
    last_job: str | None = None
    run_uid: int | None = None  # its jobs run as this local user (root daemon only)
    run_gid: int | None = None


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
    run_uid: int | None = None
    run_gid: int | None = None
    due_at: float | None = None  # when this attempt became due: its wait is start - due_at
    prior_state: str = "pending"  # what release_claims puts back


@dataclass
class RunningAttempt:
    """A run the store still marks as in progress (for recovery after a crash)."""

    seq: int
    id: str
    run: int
    pid: int | None
    pid_started: float | None
    started_at: float | None = None
    owner: str | None = None  # None: claimed before runs had owners (an upgraded store)


@dataclass(frozen=True)
class RunRow:
    """One attempt of a job, as stored (times are seconds since the epoch)."""

    run: int
    worker: int | None
    pid: int | None
    started_at: float | None
    finished_at: float | None
    outcome: str
    exit_code: int | None
    signal: int | None
    error: str | None
    counted: bool
    log_path: str | None
    # The result of a daemon that had lost the run to a rescue (see finish_run).
    late_result: dict | None = None
    owner: str | None = None  # the daemon that claimed it (None: before runs had owners)
    host: str | None = None  # that daemon's host, while it is registered


@dataclass(frozen=True)
class JobRow:
    """A job as stored; the network side turns it into the protocol's job record."""

    seq: int
    id: str
    command: str
    state: str
    queue: str
    priority: int
    attempts: int
    max_retries: int
    timeout: float
    runs: int
    created_at: float
    updated_at: float
    run_at: float
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    last_error: str | None
    unique_key: str | None
    after: tuple[str, ...]
    dependencies_left: int
    history: tuple[RunRow, ...] | None = None  # only when asked for
    # Where and with which variables of its own it runs: read with the history.
    cwd: str | None = None
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class Canceled:
    """What `cancel_waiting_job` did: the job, and the jobs that waited on it and
    were canceled with it."""

    job: JobRow
    dependents: list[str]


@dataclass(frozen=True)
class Transition:
    """What ending an attempt does: the job's next state and the run's record.

    Decided by `queuectld.engine.outcome`, written by `Store.finish_run`.
    """

    state: str
    outcome: str
    counted: bool
    run_at: float | None  # None: the job's run_at stays as it was
    error: str | None


@dataclass
class Finished:
    """What `finish_run` did: whether the fence let it apply, and the dependents
    it canceled with the job (a job that ended dead or canceled)."""

    applied: bool
    canceled: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FleetFigures:
    """A daemon's workers as its last heartbeat saw them, for the other daemons' `status`."""

    busy: int
    idle: int
    target: int


@dataclass(frozen=True)
class DaemonRecord:
    """A daemon registered in the store, with its last heartbeat."""

    id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    workers: FleetFigures | None = None  # None until it has said (or from an older daemon)


class Transactions(ABC):
    """Transaction mechanics, for `runner.py` alone: one transaction per batch of
    calls, one savepoint per call. Nothing else begins or commits."""

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


class Store(Transactions):
    """What a backend must implement; policy (what may be retried, dependency
    order, the messages users read) stays above it wherever it can."""

    # Jobs
    @abstractmethod
    def insert_jobs(self, jobs: list[NewJob], now: float, on_duplicate: str) -> Enqueued:
        """Insert jobs (all or none), resolving `after` and `unique_key`.

        A job whose unique key is held by a live job is not inserted: its id is the
        holder's (on_duplicate 'ignore') or the whole batch fails with a conflict
        ('error'). Unknown dependencies and cycles fail with invalid_job.
        """

    @abstractmethod
    def claim_due_jobs(self, now: float, limit: int, owner: str) -> list[ClaimedJob]:
        """Move up to `limit` due jobs to processing, each as a run owned by `owner`:
        among queues that are neither paused nor at their concurrency limit, higher
        queue priority first, then job priority, then earliest due. Jobs waiting for
        dependencies are never claimed, and no job is ever claimed by two owners."""

    @abstractmethod
    def next_due_time(self) -> float | None:
        """When the earliest claimable job becomes due (None when nothing could start).

        Jobs in paused or full queues, and jobs waiting for dependencies, do not count:
        a change that frees them (resume, a job ending) wakes the dispatcher itself.
        """

    @abstractmethod
    def record_run_process(
        self, seq: int, run: int, worker: int, pid: int, pid_started: float, started: float
    ) -> None:
        """The run's process; `started`, when it was handed to its worker, becomes the
        start time of the run and of the job (a job claimed ahead waits a little)."""

    @abstractmethod
    def release_claims(self, claims: list[tuple[int, int, str]], owner: str, now: float) -> None:
        """Undo claims of runs that never started: for each (seq, run, prior state)
        the run is forgotten and the job is back in its prior state, as if never
        claimed. A run that is no longer `processing` with that number and owner is
        left alone."""

    @abstractmethod
    def finish_run(
        self,
        seq: int,
        run: int,
        *,
        owner: str | None,
        change: Transition,
        now: float,
        exit_code: int | None = None,
        signal: int | None = None,
        log_path: str | None = None,
    ) -> Finished:
        """Close a run and move its job as `change` says, fenced: only while the job
        is `processing` in that run and the run is `owner`'s (None matches the
        ownerless runs of an upgraded store).

        A result the fence rejects changes neither the job nor the run's outcome:
        it is kept in the run's `late_result`, and `applied` is False. A terminal
        state settles the job's dependents in the same transaction (those of a
        completed job are unblocked, those of a dead or canceled one canceled, and
        theirs in turn); `canceled` lists the dependents that were canceled.
        """

    @abstractmethod
    def job_state(self, job_id: str) -> str | None: ...

    @abstractmethod
    def job_log_path(self, job_id: str, run: int | None) -> tuple[int, int, str, str | None]:
        """(seq, run number, job state, log path) of the given or latest run."""

    @abstractmethod
    def running_attempts(self, owner: str) -> list[RunningAttempt]:
        """The runs still in progress that `owner` claimed, and the ownerless runs of
        an upgraded store (only one daemon could have claimed those)."""

    @abstractmethod
    def get_job(self, job_id: str, history: bool = True) -> JobRow | None: ...

    @abstractmethod
    def list_jobs(
        self, states: list[str] | None, queue: str | None, limit: int, after: int | None
    ) -> tuple[list[JobRow], int | None]:
        """A page of jobs in creation order (in any of `states`, when given), and the
        cursor of the next page."""

    @abstractmethod
    def count_by_state(self) -> dict[str, int]: ...

    @abstractmethod
    def cancel_waiting_job(self, job_id: str, now: float) -> Canceled:
        """Cancel a pending or retry-waiting job; StoreError if it is in any other state."""

    @abstractmethod
    def retry_dead_jobs(
        self,
        job_id: str | None,
        now: float,
        queue: str | None = None,
        since: float | None = None,
    ) -> list[str]:
        """Move one dead job (or every dead job when job_id is None, optionally only of
        `queue` and dead since `since`) back to pending with fresh retries."""

    @abstractmethod
    def retry_job(self, job_id: str, now: float) -> JobRow:
        """Run a finished (completed, dead or canceled) job again, keeping its history."""

    @abstractmethod
    def edit_job(self, job_id: str, changes: dict, now: float) -> JobRow:
        """Change command, priority, run_at or queue of a job that has not started."""

    @abstractmethod
    def purge_jobs(
        self, state: str, finished_before: float, queue: str | None, limit: int
    ) -> tuple[int, list[str]]:
        """Delete up to `limit` jobs in a terminal state that finished before the given
        time; returns how many, and the log files of their runs (for the caller to remove)."""

    # Captured output, on a store shared by daemons on several hosts
    # Whether runs' output is copied into the store: on a shared store a run's log
    # file is on the host that ran it, and the store is where every daemon reads it
    # (while it runs, and after, even once that host is gone). A store of its own has
    # one daemon, whose log files are the output; nothing is copied.
    ships_output: bool = False

    def append_output(self, chunks: list[tuple[int, int, int, bytes]]) -> None:
        """Store pieces of runs' output, each (job seq, run, byte offset, data); a piece
        already stored at that offset is kept as it is. Goes with the job's runs when
        the job is deleted. A store that does not ship output keeps nothing."""

    def read_output(self, seq: int, run: int, offset: int, limit: int) -> bytes:
        """Up to `limit` bytes of a run's stored output from `offset`, stopping at a gap
        (b"" from a store that does not ship output)."""
        return b""

    def output_size(self, seq: int, run: int) -> int:
        """How many bytes of a run's output are stored, from its start without a gap."""
        return 0

    # Queues
    @abstractmethod
    def queue_settings(self) -> dict[str, dict]:
        """Stored settings of every configured queue: concurrency, priority, paused, on_finish."""

    @abstractmethod
    def set_queue(self, name: str, changes: dict) -> dict:
        """Create or change a queue's settings; returns them."""

    @abstractmethod
    def queue_overview(self, now: float) -> list[dict]:
        """Every queue that has settings or jobs: settings, counts by state, oldest due age."""

    @abstractmethod
    def queue_counts(self, queue: str) -> dict[str, int]: ...

    # Schedules
    def lead_housekeeping(self) -> bool:
        """Whether this daemon is the one of a shared store that prunes (and does
        the other chores that need doing once, not once per daemon); the first to
        ask is, until it goes away. A store of its own has one daemon."""
        return True

    def lock_schedules(self) -> bool:
        """Keep other daemons of a shared store out of firing schedules until this
        transaction ends, so that each fire time is seen unfired by one of them
        only; False if another daemon is firing them now. A store of its own has
        one writer, and nothing to lock."""
        return True

    @abstractmethod
    def add_schedule(self, schedule: Schedule, replace: bool) -> None: ...
    @abstractmethod
    def get_schedules(self, name: str | None = None) -> list[Schedule]: ...
    @abstractmethod
    def remove_schedule(self, name: str) -> None: ...
    @abstractmethod
    def update_schedule(self, name: str, changes: dict) -> None:
        """Set paused, fired_through, next_fire or last_job of a schedule."""

    @abstractmethod
    def next_schedule_fire(self) -> float | None:
        """The earliest next fire time of the schedules that are not paused."""

    # Daemons: identity, heartbeats and the rescue of runs whose daemon is gone
    def lease_clock(self) -> float:
        """The time leases are kept by (seconds since the epoch): heartbeats are stored
        and compared on it. The host's clock for a store of one host; a shared store
        answers with its own, since the clocks of several hosts disagree."""
        return time.time()

    @abstractmethod
    def register_daemon(
        self, daemon_id: str, host: str, pid: int, now: float, fleet: FleetFigures | None = None
    ) -> None:
        """Record this daemon as alive (again) with a fresh heartbeat."""

    @abstractmethod
    def beat(self, daemon_id: str, now: float, fleet: FleetFigures | None = None) -> bool:
        """Renew the daemon's lease and, when given, record its fleet figures; False when
        it is not registered (any more)."""

    @abstractmethod
    def unregister_daemon(self, daemon_id: str) -> None:
        """The daemon stopped cleanly and owns no run any more."""

    @abstractmethod
    def daemons(self) -> list[DaemonRecord]:
        """Every registered daemon, by id."""

    @abstractmethod
    def rescue_expired_runs(
        self, rescuer: str, lease: float, now: float, change: Transition
    ) -> list[RunningAttempt]:
        """End every run owned by a daemon (other than `rescuer`) whose last heartbeat
        is older than `lease` seconds, as `change` says (fenced like `finish_run`),
        and forget those daemons. Returns the runs it ended."""

    @abstractmethod
    def request_cancel(self, job_id: str, now: float) -> str | None:
        """Ask the daemon that runs a `processing` job to cancel it: marks the job's
        running run, and returns that run's owner (None: the job is not running)."""

    @abstractmethod
    def cancel_requests(self, owner: str) -> list[str]:
        """Ids of the jobs whose running run `owner` owns and whose cancel another
        daemon requested (see request_cancel)."""

    @abstractmethod
    def instance_id(self) -> str:
        """A random id fixed when the store was created: the marker of the processes of
        runs claimed before runs had owners (see `running_attempts`)."""

    @abstractmethod
    def prune_finished(
        self, finished_before: float, keep: int, limit: int
    ) -> tuple[int, list[str]]:
        """Delete up to `limit` completed/canceled jobs finished before `finished_before`
        or beyond the newest `keep` (0: no count limit); return (deleted, their log paths)."""

    @abstractmethod
    def purge_dead(self, job_id: str | None) -> tuple[list[str], list[str]]:
        """Delete one dead job (or all when job_id is None); return (ids, log paths)."""

    # Figures for people watching (stats, live view, shell completion)
    @abstractmethod
    def run_stats(self, now: float, queue: str | None = None, per_minute: bool = False) -> dict:
        """Throughput, success and timing of attempts that ended recently (see stats op);
        with per_minute, also the hour's attempts minute by minute."""

    @abstractmethod
    def next_waiting_jobs(self, limit: int) -> list[JobRow]:
        """Pending and retry-waiting jobs, soonest due first."""

    @abstractmethod
    def job_ids_with_prefix(self, prefix: str, states: list[str] | None, limit: int) -> list[str]:
        """Job ids starting with `prefix` (in these states), in id order."""

    # Settings
    def announce_rules(self, sender: str) -> None:
        """Tell the other daemons of a shared store, once this transaction commits,
        that what may run changed (daemon `sender` changed it). A store of its own
        has nobody to tell."""

    def rules_version(self) -> int:
        """A count that every announced change of the rules raises: what a daemon
        that cannot listen for the announcements compares, to know it missed one."""
        return 0

    @abstractmethod
    def config_items(self) -> dict[str, str]: ...
    @abstractmethod
    def set_config(self, key: str, value: str) -> None: ...
