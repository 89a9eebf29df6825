"""Moves jobs between the store and the fleet.

Due jobs are claimed in one store call for all idle workers at once, and
while jobs are short, for busy workers too: those are held here and handed
to the first worker that frees up, so that it does not wait for the store
between two short jobs (see _room_ahead, release_ahead). The dispatcher runs
when something can change the answer: a worker became idle, a job was
enqueued, or the timer set for the next due job fires. It never sleeps in a
loop asking the store whether anything is due.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from queuectld.config import Config
from queuectld.engine.events import JobEvents
from queuectld.engine.outcome import Stop, next_state
from queuectld.engine.output_shipping import ship_rest
from queuectld.fleet import messages
from queuectld.fleet.procutil import describe_exit
from queuectld.fleet.supervisor import Supervisor, Worker
from queuectld.fleet.survivors import RUN_MARKER, kill_run, run_marker
from queuectld.store import ClaimedJob, Finished, Store, StoreUnavailable
from queuectld.store.runner import StoreRunner
from queuectld.telemetry.counters import Telemetry

log = logging.getLogger("queuectld.dispatch")

T = TypeVar("T")

CANCELED_BY_USER = Stop.CANCELED
INTERRUPTED = Stop.INTERRUPTED
# A job's state change must reach the store even while it is locked or full:
# retry with a growing pause, up to this one.
WRITE_RETRY_FIRST = 0.25
WRITE_RETRY_MAX = 5.0
# A run's pid is written on its own only once it has run this long; a shorter
# run's pid goes in with its result. Until then a daemon crash is covered by the
# run marker in the job's environment (see survivors.py), not by the pid.
PROCESS_RECORD_DELAY = 0.1
# A job is claimed ahead for a busy worker only while runs take less than this
# (a moving average, and the worker's current run so far), and the average's
# weight for each new run. A held job goes back to waiting once it has waited
# a few average runs (HOLD_AHEAD_RUNS): the run before it turned out long.
HOLD_AHEAD_BELOW_SECONDS = 0.05
RUN_AVERAGE_WEIGHT = 0.2
HOLD_AHEAD_RUNS = 4
HOLD_AHEAD_AT_LEAST_SECONDS = 0.005


@dataclass(eq=False)
class ActiveRun:
    job: ClaimedJob
    worker: Worker
    log_path: str
    pid: int | None = None
    pid_started: float | None = None
    kill_reason: Stop | None = None
    started: float = 0.0
    marker: str | None = None
    process_recorded: bool = False
    shipped: int = 0  # bytes of its output in the store (a store that ships output)


class Dispatcher:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        runner: StoreRunner,
        supervisor: Supervisor,
        config: Config,
        events: JobEvents,
        log_dir: Path,
        telemetry: Telemetry | None = None,
        owner: str = "",
    ):
        self.loop = loop
        # This daemon's id: it claims runs as their owner, its run markers carry it,
        # and every write that ends one of its runs is fenced by it.
        self.owner = owner
        self.telemetry = telemetry or Telemetry()
        self.runner = runner
        self.supervisor = supervisor
        self.config = config
        self.events = events
        self.log_dir = str(log_dir)
        self.paused = False
        # `worker drain`: running jobs finish, none start, enqueues still accepted.
        self.draining = False
        # The lease could not be renewed (engine/lease.py): nothing starts.
        self.fenced = False
        self.active: dict[str, ActiveRun] = {}
        self._claiming = False
        self._claim_again = False
        # Jobs claimed for workers that are still busy, started as each frees up;
        # see _room_ahead. Any change to what may run bumps the generation.
        self.ahead: collections.deque[tuple[float, ClaimedJob]] = collections.deque()
        self._ahead_timer: asyncio.TimerHandle | None = None
        self._generation = 0
        self._recent_run_seconds: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Runs whose process is not written yet, oldest first; see _record_processes.
        self._unrecorded: dict[ActiveRun, None] = {}
        self._record_timer: asyncio.TimerHandle | None = None
        self._writes_pending = 0
        self._writes_settled = asyncio.Event()
        self._writes_settled.set()
        self._give_up_writes = False

    # -- deciding what runs -------------------------------------------------

    def kick(self) -> None:
        """Start held jobs on idle workers, and claim due jobs for the rest.

        The claim is queued at once, not on a later loop turn, so that it joins the
        store batch (and the commit) of the write that called for it: the insert of
        an enqueued job, or the result of the run that freed a worker.
        """
        if self.paused or self.draining or self.fenced or self.supervisor.stopping:
            return
        idle = self._start_held()
        if self._claiming:
            self._claim_again = True
            return
        limit = len(idle) + self._room_ahead()
        if limit <= 0:
            return
        self._claiming = True
        self.runner.submit(
            _claim,
            (time.time(), limit, self.owner),
            {},
            functools.partial(self._claimed, self._generation, limit),
        )

    def _start_held(self) -> list[Worker]:
        """Give held jobs to idle workers; returns the workers still idle."""
        idle = self.supervisor.idle_workers()
        if self.paused or self.draining or self.fenced or self.supervisor.stopping:
            return idle
        while idle and self.ahead:
            self._start(idle.pop(0), self.ahead.popleft()[1])
        return idle

    def _room_ahead(self) -> int:
        """How many more jobs to hold claimed for workers that are busy now.

        With short jobs a worker would otherwise idle for a store round trip
        between two of them; with long ones that wait is nothing, and a held job
        would show as processing long before it runs, so none are held. Up to
        two per busy worker, refilled once half are gone: one claim of several
        jobs costs the store little more than a claim of one.
        """
        recent = self._recent_run_seconds
        if recent is None or recent > HOLD_AHEAD_BELOW_SECONDS:
            return 0
        since = time.time() - HOLD_AHEAD_BELOW_SECONDS
        short = sum(
            1
            for worker in self.supervisor.busy_workers()
            if worker.run is not None and worker.run.started > since
        )
        room = 2 * short - len(self.ahead)
        return room if room >= short else 0

    def _claimed(
        self, generation: int, limit: int, claimed: tuple | None, error: BaseException | None
    ) -> None:
        self._claiming = False
        if error is not None:
            log.error("dispatch failed: %s", error)
            self.loop.call_later(1.0, self.kick)  # the store may be briefly unavailable
            return
        jobs, next_due = claimed
        if generation != self._generation or self.paused or self.draining or self.fenced:
            # What may run changed while the claim was out (a queue paused, a
            # drain): claimed under the old rules, these go back untouched.
            self._release(jobs)
        else:
            idle = self.supervisor.idle_workers()
            now = time.time()
            for job in jobs:
                if idle:
                    self._start(idle.pop(0), job)
                else:
                    self.ahead.append((now, job))
            self._watch_ahead()
        if len(jobs) < limit:
            self._set_timer(next_due)
        if self._claim_again or generation != self._generation:
            self._claim_again = False
            self.kick()

    def release_ahead(self, job_id: str | None = None) -> bool:
        """Put held jobs (all, or the one with this id) back to waiting.

        Called before anything that changes what may run (a queue paused or
        limited, a drain, a stop) or changes a held job (cancel, edit): the store
        call that follows is queued after the release, so it sees them waiting.
        """
        if job_id is None:
            self._generation += 1  # a claim now in flight was made under the old rules
        kept = [held for held in self.ahead if job_id is not None and held[1].id != job_id]
        released = [job for _, job in self.ahead if job_id is None or job.id == job_id]
        self.ahead = collections.deque(kept)
        self._release(released)
        return bool(released)

    async def change_rules(
        self,
        write: Callable[[], Awaitable[T]],
        *,
        job_id: str | None = None,
        then: Callable[[], None] | None = None,
        kick: bool = True,
        announce: bool = True,
    ) -> T:
        """Change what may run (a queue's limit or pause, a drain, a smaller fleet) or
        a job that may be held (cancel, edit) through `write`, a store call.

        The jobs held ahead (all, or the one with `job_id`) go back first, so that
        the write sees them waiting and a claim in flight is dropped; once the write
        is committed, `then()` applies what the daemon keeps in memory, and the
        dispatcher claims again under the new rules, unless `kick` is False: a
        change that only takes away (a pause, a cancel, a smaller fleet) must not
        claim, or it would hold jobs for workers that are retiring. This is the one
        place where rules change, and so where daemons sharing a store tell each
        other: a change that is not about one job is announced once it is committed
        (engine/shared_rules.py re-reads it elsewhere), unless `announce` is False,
        as for that re-reading itself.
        """
        self.release_ahead(job_id)
        try:
            result = await write()
            if then is not None:
                then()
            if announce and job_id is None:
                await self._announce_rules()
        finally:
            if kick:
                self.kick()
        return result

    async def _announce_rules(self) -> None:
        try:
            await self.runner.call(Store.announce_rules, self.owner)
        except StoreUnavailable as exc:
            # The change itself is committed: the others take it at their next
            # re-reading (for any later change, or on listening again) or restart.
            log.warning("could not tell the other daemons of a rule change: %s", exc)

    def set_draining(self, draining: bool) -> None:
        """`worker drain`: running jobs finish, none start; enqueues are still accepted."""
        self.draining = draining

    def _hold_limit(self) -> float:
        recent = self._recent_run_seconds or HOLD_AHEAD_BELOW_SECONDS
        limit = max(HOLD_AHEAD_AT_LEAST_SECONDS, recent * HOLD_AHEAD_RUNS)
        return min(HOLD_AHEAD_BELOW_SECONDS, limit)

    def _watch_ahead(self) -> None:
        if self.ahead and self._ahead_timer is None:
            self._ahead_timer = self.loop.call_later(self._hold_limit(), self._release_stale)

    def _release_stale(self) -> None:
        """Jobs held for workers whose runs turned out long go back to waiting."""
        self._ahead_timer = None
        since = time.time() - self._hold_limit()
        stale = [job for held_at, job in self.ahead if held_at <= since]
        if stale:
            self.ahead = collections.deque(held for held in self.ahead if held[0] > since)
            self._release(stale)
        self._watch_ahead()

    def fence(self, grace: float) -> None:
        """This daemon may be about to lose its lease: start nothing, put back the
        held claims, and kill every running job (it goes back to waiting, not
        counted; SIGKILL at most `grace` seconds after SIGTERM), so that none still
        runs when another daemon takes its runs."""
        self.fenced = True
        self.release_ahead()
        for job_id in list(self.active):
            self.kill_running(job_id, Stop.LEASE_LOST, grace)

    def unfence(self) -> None:
        """The lease is renewed again: back to work."""
        self.fenced = False
        self.kick()

    def hold(self) -> None:
        """Start nothing more (the daemon is stopping); held jobs go back."""
        self.paused = True
        self.release_ahead()

    def _release(self, jobs: list[ClaimedJob]) -> None:
        if jobs:
            self._write(
                Store.release_claims,
                [(job.seq, job.run, job.prior_state) for job in jobs],
                self.owner,
                time.time(),
            )

    def _set_timer(self, due: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if due is not None:
            delay = max(0.0, due - time.time())
            self._timer = self.loop.call_later(delay, self.kick)

    def _start(self, worker: Worker, job: ClaimedJob) -> None:
        # One folder per thousand jobs; a string, not a Path: this runs once per job.
        log_path = f"{self.log_dir}/{job.seq // 1000}/{job.seq}-{job.run}.log"
        run = ActiveRun(job, worker, log_path, started=time.time())
        run.marker = run_marker(self.owner, job.seq, job.run)
        worker.busy = True
        worker.run = run
        self.active[job.id] = run
        message: messages.Run = {
            "t": messages.RUN,
            "command": job.command,
            "cwd": job.cwd,
            "env_add": {
                "QUEUECTL_JOB_ID": job.id,
                "QUEUECTL_ATTEMPT": str(job.attempts + 1),
                "QUEUECTL_WORKER": str(worker.id),
                RUN_MARKER: run.marker,
            },
            "timeout": job.timeout,
            "grace": self.config["kill-grace"],
            "log": run.log_path,
            "log_max": self.config["log-max-bytes"],
            "uid": job.run_uid,
            "gid": job.run_gid,
        }
        # A worker keeps the last environment it was sent: jobs of one submitter
        # share one (the store hands out one object per stored environment), and
        # it is most of a run message's bytes.
        if worker.environ is not job.environ:
            message["env"] = job.environ
            worker.environ = job.environ
        self.supervisor.send(worker, message)
        self.events.job_changed(job.id, "processing", job.queue)
        waited = run.started - job.due_at if job.due_at is not None else 0.0
        log.info(
            "job %s started on worker %d (attempt %d of %d, queue %s, waited %.3f s)",
            job.id,
            worker.id,
            job.attempts + 1,
            job.max_retries + 1,
            job.queue,
            waited,
            extra={
                "event": "job_started",
                "job": job.id,
                "attempt": job.attempts + 1,
                "run": job.run,
                "queue": job.queue,
                "worker": worker.id,
                "waited": round(waited, 6),
            },
        )
        self.telemetry.job_started(job.queue, waited)

    # -- what workers report ----------------------------------------------

    def on_worker_message(self, worker: Worker, message: messages.Started | messages.Done) -> None:
        run: ActiveRun | None = worker.run
        if run is None:
            return
        kind = message.get("t")
        if kind == messages.STARTED:
            run.pid = message.get("pid")
            run.pid_started = message.get("pid_started")
            self._unrecorded[run] = None
            if self._record_timer is None:
                self._record_timer = self.loop.call_later(
                    PROCESS_RECORD_DELAY, self._record_processes
                )
        elif kind == messages.DONE:
            if run.pid is None:  # a short run: its pid comes with its end
                run.pid = message.get("pid")
            worker.busy = False
            worker.run = None
            self._start_held()  # the worker's next job first; the bookkeeping can wait
            self._finish(run, message)

    def _record_processes(self) -> None:
        """Write the processes of the runs that have now run PROCESS_RECORD_DELAY.

        One timer for all runs, not one per run: at a thousand short jobs a
        second, a timer each (armed, then canceled) cost more than the writes
        they save."""
        self._record_timer = None
        due = time.time() - PROCESS_RECORD_DELAY
        runs = []
        for run in self._unrecorded:
            if run.started > due:
                break
            runs.append(run)
        for run in runs:
            del self._unrecorded[run]
            run.process_recorded = True
        if runs:
            self._write(_store_processes, runs)
        if self._unrecorded:
            first = next(iter(self._unrecorded))
            self._record_timer = self.loop.call_later(
                max(0.0, first.started - due), self._record_processes
            )

    def on_worker_exit(self, worker: Worker, status: int | None) -> None:
        run: ActiveRun | None = worker.run
        if run is None:
            return
        worker.run = None
        worker.busy = False
        # The job (its shell, its group, anything carrying its marker) may outlive the
        # worker; it must not run unsupervised, nor next to its own retry.
        killed = kill_run(run.marker, run.pid, run.pid_started, run.started)
        if killed:
            log.warning(
                "killed %d process(es) of job %s left by its worker", len(killed), run.job.id
            )
        if run.kill_reason is not None:
            message = messages.done("killed", run.kill_reason.value)
        else:
            message = messages.done("worker_died", f"worker process died ({describe_exit(status)})")
        self._finish(run, message)

    def _finish(self, run: ActiveRun, report: messages.Done) -> None:
        job = run.job
        outcome = report.get("outcome")
        error = report.get("error")
        if report.get("log_error"):
            error = f"{error}; {report['log_error']}" if error else report["log_error"]
        now = time.time()
        change = next_state(
            outcome=outcome,
            error=error,
            stop=run.kill_reason,
            attempts=job.attempts,
            max_retries=job.max_retries,
            now=now,
            backoff=self.config.backoff,
        )
        state, outcome, counted, run_at = (
            change.state, change.outcome, change.counted, change.run_at
        )  # fmt: skip
        self.active.pop(job.id, None)
        self._unrecorded.pop(run, None)
        record = None if run.process_recorded else run
        self._write(
            _finish_run,
            record,
            job.seq,
            job.run,
            owner=self.owner,
            change=change,
            now=now,
            exit_code=report.get("exit_code"),
            signal=report.get("signal"),
            log_path=report.get("log"),
            ship_from=run.log_path if self.runner.store.ships_output else None,
            then=functools.partial(self._finished, job, state, run_at),
        )
        duration = now - run.started
        recent = self._recent_run_seconds
        self._recent_run_seconds = (
            duration if recent is None else recent + RUN_AVERAGE_WEIGHT * (duration - recent)
        )
        # Before the log line: writing it releases the GIL, and the store thread
        # would take the result alone into a batch (and a commit) of its own.
        self.kick()
        _log_finish(job, state, outcome, counted, duration, report, run_at, now)
        self.telemetry.job_finished(job.queue, state, counted, duration)

    def _finished(
        self, job: ClaimedJob, state: str, run_at: float | None, finished: Finished
    ) -> None:
        if not finished.applied:
            # Fenced out: the run was taken from this daemon (rescued after its
            # lease expired) before the result arrived. The store kept the result
            # in the run's history; the job's newer state stands.
            log.warning(
                "job %s run %d ended here after another daemon had taken it over; "
                "its result is kept in the run history only",
                job.id,
                job.run,
                extra={"event": "late_result", "job": job.id, "run": job.run},
            )
            return
        self.events.job_changed(job.id, state, job.queue)
        # Dependents canceled because this job ended dead or canceled.
        for dependent in finished.canceled:
            self.events.job_changed(dependent, "canceled")
        if run_at is not None:
            self.kick()  # the retry may be due before the current timer

    # -- user actions on running jobs ------------------------------------

    def kill_running(self, job_id: str, reason: Stop, grace: float | None = None) -> bool:
        run = self.active.get(job_id)
        if run is None:
            return False
        run.kill_reason = reason
        self.supervisor.send(run.worker, messages.kill(reason.value, grace))
        return True

    def check_cancel_requests(self) -> None:
        """Kill the running jobs whose cancel was asked through another daemon of a
        shared store (Store.request_cancel); they end `canceled` as a local cancel."""
        if self.active:
            self.runner.submit(Store.cancel_requests, (self.owner,), {}, self._cancel_asked)

    def _cancel_asked(self, job_ids: list[str] | None, error: BaseException | None) -> None:
        # A job held ahead (claimed, not started) is not looked at: held only while
        # runs take milliseconds, it is over about as soon as a kill would land.
        if error is not None:
            return  # the next notification or poll asks again
        for job_id in job_ids or ():
            run = self.active.get(job_id)
            if run is not None and run.kill_reason is None:
                log.info(
                    "job %s canceled through another daemon",
                    job_id,
                    extra={"event": "job_cancel_requested", "job": job_id},
                )
                self.kill_running(job_id, CANCELED_BY_USER)

    def interrupt_worker(self, worker: Worker) -> None:
        if worker.run is not None:
            self.kill_running(worker.run.job.id, INTERRUPTED)

    # -- bookkeeping ---------------------------------------------------------

    def _write(self, fn, *args, then: Callable[[Any], None] | None = None, **kwargs) -> None:
        """Issue a store write that is retried while the store is unavailable;
        `then(result)` once it is committed.

        These writes record what already happened to a job (it started, it ended):
        losing one would leave the job `processing` and run it again after a
        restart, so they wait out a locked or full database instead of failing.
        """
        self._writes_pending += 1
        self._writes_settled.clear()
        self._attempt_write(fn, args, kwargs, then, WRITE_RETRY_FIRST)

    def _attempt_write(self, fn, args, kwargs, then, pause: float) -> None:
        def settled(result: Any, error: BaseException | None) -> None:
            if isinstance(error, StoreUnavailable) and not self._give_up_writes:
                log.warning("store unavailable (%s); retrying a job update in %g s", error, pause)
                retry = min(pause * 2, WRITE_RETRY_MAX)
                self.loop.call_later(pause, self._attempt_write, fn, args, kwargs, then, retry)
                return
            self._writes_pending -= 1
            if not self._writes_pending:
                self._writes_settled.set()
            if error is not None:
                log.error("store write failed: %s", error)
            elif then is not None:
                then(result)

        if self._give_up_writes:
            return  # the daemon gave up on the store (see flush); the next start recovers
        self.runner.submit(fn, args, kwargs, settled)

    async def flush(self, timeout: float = 30.0) -> int:
        """Wait for every write already issued (before the store closes).

        Gives up after `timeout` when the store stays unavailable and returns how
        many writes were lost: their jobs are still `processing` in the store and
        are recovered (requeued) by the next start.
        """
        try:
            await asyncio.wait_for(self._writes_settled.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        lost = self._writes_pending
        if lost:
            self._give_up_writes = True
            log.error(
                "%d job update(s) could not be stored; those jobs are requeued at next start",
                lost,
            )
        return lost


def _log_finish(
    job: ClaimedJob,
    state: str,
    outcome: str | None,
    counted: bool,
    duration: float,
    report: dict,
    run_at: float | None,
    now: float,
) -> None:
    """One line per finished attempt; its level says how much it deserves attention."""
    attempt = job.attempts + 1
    exit_code = report.get("exit_code")
    error = report.get("error")
    fields = {
        "event": f"job_{state}" if counted else f"job_{outcome}",
        "job": job.id,
        "attempt": attempt,
        "queue": job.queue,
        "duration": round(duration, 6),
        "exit_code": exit_code,
        "outcome": outcome,
        "state": state,
    }
    if error:
        fields["error"] = error
    if state == "completed":
        log.info(
            "job %s completed in %.3f s (attempt %d, exit code 0)",
            job.id, duration, attempt, extra=fields,
        )  # fmt: skip
    elif state == "failed":
        retry_in = (run_at or now) - now
        fields["retry_in"] = round(retry_in, 3)
        log.warning(
            "job %s failed after %.3f s (attempt %d of %d: %s); retry in %.3g s",
            job.id, duration, attempt, job.max_retries + 1, error, retry_in, extra=fields,
        )  # fmt: skip
    elif state == "dead":
        log.error(
            "job %s is dead after %d attempt(s): %s (last run %.3f s); moved to the DLQ",
            job.id, attempt, error, duration, extra=fields,
        )  # fmt: skip
    else:  # canceled, or interrupted and requeued: not an attempt that counts
        log.info(
            "job %s %s after %.3f s (%s) -> %s",
            job.id, outcome, duration, error, state, extra=fields,
        )  # fmt: skip


def _store_process(store: Store, run: ActiveRun) -> None:
    store.record_run_process(
        run.job.seq, run.job.run, run.worker.id, run.pid, run.pid_started, run.started
    )


def _store_processes(store: Store, runs: list[ActiveRun]) -> None:
    for run in runs:
        _store_process(store, run)


def _finish_run(
    store: Store, record: ActiveRun | None, *args, ship_from: str | None = None, **kwargs
) -> Finished:
    """Close a run, first writing its process and start if not done yet (a short run),
    and the rest of its output to a store that ships output (`ship_from`: its log)."""
    if record is not None:
        _store_process(store, record)
    if ship_from is not None:
        ship_rest(store, args[0], args[1], ship_from)
    return store.finish_run(*args, **kwargs)


def _claim(
    store: Store, now: float, limit: int, owner: str
) -> tuple[list[ClaimedJob], float | None]:
    jobs = store.claim_due_jobs(now, limit, owner)
    # When every idle worker got a job the next due time does not matter: the
    # first worker to free up claims again. Skipping it saves a query per queue.
    return jobs, (store.next_due_time() if len(jobs) < limit else None)
