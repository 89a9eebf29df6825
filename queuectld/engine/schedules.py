"""Recurring jobs: cron arithmetic, the firing rule, and the timer that fires them.

Each firing enqueues one job whose id is the schedule's name and the fire time
(`nightly@2030-01-01T03:00:00Z`). The store keeps, per schedule, the latest
fire time already handled (`fired_through`); firing moves it forward in the
same transaction that inserts the job, and a job id can exist only once, so a
restart, a clock that steps back, or a second daemon can never fire one
firing twice.

Missed firings (the daemon was down, or the schedule's fire time passed while
the store was busy) follow the schedule's catch-up policy:
  none  skip them; a firing less than GRACE_SECONDS late still runs
  one   run one job for all of them (the latest), then carry on
  all   run every one of them (at most MAX_CATCH_UP, the latest ones)

The daemon sleeps on a timer until the next fire time of any schedule; it never
polls. The timer is re-armed at most every MAX_SLEEP seconds because it
measures monotonic time while fire times are wall-clock times, and the wall
clock can be stepped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from queuectld.engine.jobspec import new_job
from queuectld.store import NewJob, Store, rules
from queuectld.store.base import Schedule
from queuectld.store.runner import StoreRunner

log = logging.getLogger("queuectld.schedules")

CATCH_UP_POLICIES = ("none", "one", "all")
DEFAULT_CATCH_UP = "one"
GRACE_SECONDS = 60.0
MAX_CATCH_UP = 1000
MAX_SLEEP = 3600.0
# Scheduler seconds to wait while another daemon of a shared store fires schedules.
BUSY_RETRY_SECONDS = 1.0
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
# Job spec fields a schedule's template may not carry: the schedule decides them.
TEMPLATE_FORBIDDEN = ("id", "run_at", "delay", "after")


class ScheduleError(ValueError):
    """A schedule definition that cannot be used; the message says why."""


# -- cron arithmetic ---------------------------------------------------------


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ScheduleError(
            f"schedule name {name!r} must be 1-128 letters, digits or _.:- "
            "(starting with a letter or digit)"
        )
    return name


def check_cron(expression: str) -> str:
    expression = " ".join(expression.split())
    if not expression.startswith("@") and len(expression.split()) != 5:
        raise ScheduleError(
            f"cron expression {expression!r} must have 5 fields "
            "(minute hour day-of-month month day-of-week) or be an @nickname like @hourly"
        )
    if not croniter.is_valid(expression):
        raise ScheduleError(f"cron expression {expression!r} is not valid")
    # croniter's R draws a new value each time an expression is read, and the
    # firing rule reads it many times: no two readings would agree on a fire time.
    # (No month or day name starts with R.)
    if any(item[:1] in ("R", "r") for field in expression.split() for item in field.split(",")):
        raise ScheduleError(f"cron expression {expression!r}: random fields (R) are not supported")
    return expression


def check_tz(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


def next_fire(expression: str, tz: str, after: float) -> float:
    """The first fire time strictly after `after`."""
    zone = ZoneInfo(tz)
    previous = _wall_clock(after, zone)
    times = croniter(expression, datetime.fromtimestamp(after, zone))
    while True:
        try:
            moment = times.get_next(datetime).timestamp()
        except CroniterBadDateError:
            # Valid field by field, yet no date has them all: '0 0 31 2 *'.
            raise ScheduleError(f"cron expression {expression!r} never matches a date") from None
        if _wall_clock(moment, zone) != previous:
            return moment
        # The same wall-clock time again: clocks went back and repeated it. A job set
        # for 02:30 runs once that night, as with cron.


def fires_through(expression: str, tz: str, after: float, upto: float, most: int) -> list[float]:
    """The latest `most` fire times in (after, upto], oldest first."""
    zone = ZoneInfo(tz)
    # get_prev is strictly before its start; step forward once in case upto is a fire time.
    times = croniter(expression, datetime.fromtimestamp(upto, zone))
    latest = times.get_prev(datetime).timestamp()
    following = next_fire(expression, tz, latest)
    if following <= upto:
        latest = following
    found = []
    backwards = croniter(expression, datetime.fromtimestamp(latest, zone))
    moment = latest
    while moment > after and len(found) < most:
        found.append(moment)
        moment = backwards.get_prev(datetime).timestamp()
    found.reverse()
    # Drop the second of two fire times with one wall-clock time (see next_fire).
    walls = [_wall_clock(after, zone)] + [_wall_clock(t, zone) for t in found]
    return [t for i, t in enumerate(found) if walls[i + 1] != walls[i]]


def _wall_clock(moment: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(moment, zone).replace(tzinfo=None)


def firing_id(name: str, fire_time: float) -> str:
    stamp = datetime.fromtimestamp(fire_time, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{name}@{stamp}"


def to_fire(schedule: Schedule, now: float) -> list[float]:
    """The fire times of a due schedule to enqueue now, by its catch-up policy."""
    most = MAX_CATCH_UP if schedule.catch_up == "all" else 1
    times = fires_through(schedule.cron, schedule.tz, schedule.fired_through, now, most)
    if schedule.catch_up == "none":
        times = [t for t in times if now - t <= GRACE_SECONDS]
    return times


# -- firing (runs on the store thread, in one transaction) ------------------------


def fire_due(
    store: Store, now: float, real_now: float, defaults: dict
) -> tuple[list, float | None]:
    """Enqueue the jobs of every due schedule; return (new job ids, next fire time).

    `now` is the scheduler's clock (which tests may move); the jobs themselves are
    due at `real_now`, the dispatcher's clock.
    """
    # Daemons sharing a store fire one after the other: a firing another daemon
    # made is then a job already there, seen below, not a second insert of its id.
    # While another one fires, look again shortly: its clock may be behind ours.
    if not store.lock_schedules():
        return [], now + BUSY_RETRY_SECONDS
    fired = []
    for schedule in store.get_schedules():
        if schedule.paused or schedule.next_fire > now:
            continue
        times = to_fire(schedule, now)
        skipped = _count_skipped(schedule, now, len(times))
        last_job = schedule.last_job
        for fire_time in times:
            job_id = firing_id(schedule.name, fire_time)
            if store.job_state(job_id) is not None:
                continue  # fired before: this firing is done, whatever became of its job
            job = _job_from_template(schedule, job_id, real_now, defaults)
            result = store.insert_jobs([job], real_now, "ignore")
            if result.existing:
                log.info(
                    "schedule %s: firing %s skipped, job %s holds unique key %r",
                    schedule.name,
                    job_id,
                    result.existing[0],
                    job.unique_key,
                )
                continue
            fired.append(job_id)
            last_job = job_id
        if skipped:
            log.warning(
                "schedule %s: skipped %d missed firing(s) (catch-up %s)",
                schedule.name,
                skipped,
                schedule.catch_up,
            )
        handled = fires_through(schedule.cron, schedule.tz, schedule.fired_through, now, 1)
        through = handled[-1] if handled else schedule.fired_through
        store.update_schedule(
            schedule.name,
            {
                "fired_through": through,
                "next_fire": next_fire(schedule.cron, schedule.tz, through),
                "last_job": last_job,
            },
        )
    return fired, store.next_schedule_fire()


def fire_now(store: Store, name: str, now: float, defaults: dict) -> tuple[str, bool]:
    """Enqueue one job of a schedule now, out of its timetable (a paused one too).

    Returns (job id, existed): the id is the firing's of this second with `-now`
    added, so a run now is told apart from a timed firing and never takes its id;
    existed is True when a live job already holds the template's unique key (its
    id is returned, nothing is added). The timed firings are left as they were.
    """
    found = store.get_schedules(name)
    if not found:
        raise rules.no_schedule(name)
    [schedule] = found
    job = _job_from_template(schedule, firing_id(name, now) + "-now", now, defaults)
    result = store.insert_jobs([job], now, "ignore")
    [job_id] = result.ids
    if result.existing:
        return job_id, True
    store.update_schedule(name, {"last_job": job_id})
    return job_id, False


def _count_skipped(schedule: Schedule, now: float, firing: int) -> int:
    """How many missed firings the policy drops (counted up to a bound, for the log)."""
    if schedule.catch_up == "all":
        return 0
    total = len(fires_through(schedule.cron, schedule.tz, schedule.fired_through, now, 100))
    return max(0, total - firing)


def _job_from_template(schedule: Schedule, job_id: str, now: float, defaults: dict) -> NewJob:
    return new_job(
        schedule.job,
        job_id=job_id,
        run_at=now,
        cwd=schedule.cwd,
        environ=schedule.environ,
        env=schedule.job.get("env") or {},
        max_retries=defaults["max-retries"],
        timeout=defaults["job-timeout"],
        run_uid=schedule.run_uid,
        run_gid=schedule.run_gid,
    )


# -- the clock and the timer ------------------------------------------------------


class Clock:
    """Wall-clock time for the scheduler; a test may start it elsewhere and run it faster.

    Only schedules read this clock (the daemon's hidden --clock option sets it): a
    test can then show firings at chosen minutes within seconds. Jobs, retries and
    timeouts always use the real time.
    """

    def __init__(self, start: float | None = None, speed: float = 1.0):
        self.speed = speed
        self._start = start
        self._origin = time.monotonic()

    @classmethod
    def parse(cls, text: str | None) -> Clock:
        """'ISO-TIME[,SPEED]', e.g. '2030-01-01T10:03:30Z,60'; None for the real clock."""
        if not text:
            return cls()
        from protocol.times import parse_iso

        when, _, speed_text = text.partition(",")
        speed = float(speed_text) if speed_text else 1.0
        if not speed > 0:
            raise ValueError("the clock's speed must be above 0")
        return cls(parse_iso(when), speed)

    def now(self) -> float:
        if self._start is None:
            return time.time()
        return self._start + (time.monotonic() - self._origin) * self.speed

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.speed


class Scheduler:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        runner: StoreRunner,
        defaults: Callable[[], dict],
        on_fired: Callable[[list[str]], None],
        clock: Clock,
    ):
        self.loop = loop
        self.runner = runner
        self.defaults = defaults
        self.on_fired = on_fired
        self.clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._running = False
        self._again = False
        self._closed = False

    def wake(self) -> None:
        """Fire what is due and re-arm the timer (after start and after any change)."""
        if self._closed:
            return
        if self._running:
            self._again = True
            return
        self._running = True
        self.loop.create_task(self._pass()).add_done_callback(self._pass_done)

    async def _pass(self) -> None:
        fired, upcoming = await self.runner.call(
            fire_due, self.clock.now(), time.time(), self.defaults()
        )
        if fired:
            log.info("schedules fired: %s", ", ".join(fired))
            self.on_fired(fired)
        self._arm(upcoming)

    def _pass_done(self, task: asyncio.Task) -> None:
        self._running = False
        if not task.cancelled() and task.exception() is not None:
            log.error("firing schedules failed: %s", task.exception())
            self._arm_in(1.0)  # the store may be briefly unavailable
        if self._again:
            self._again = False
            self.wake()

    def _arm(self, upcoming: float | None) -> None:
        if upcoming is None:
            self._cancel_timer()
            return
        wait = self.clock.real_seconds(max(0.0, upcoming - self.clock.now()))
        self._arm_in(min(wait, MAX_SLEEP))

    def _arm_in(self, seconds: float) -> None:
        self._cancel_timer()
        if not self._closed:
            self._timer = self.loop.call_later(seconds, self.wake)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self._closed = True
        self._cancel_timer()
