"""What the supervisor and its workers say to each other, defined once for both ends.

Each message is a msgpack map whose kind is in "t"; one frame each, over the
socket pair a worker is spawned with (protocol/framing.py). The daemon sends
`run`, `kill` and `stop`; a worker sends `ready` once, then `started` and `done`
for each run. They are TypedDicts, not classes: a map built once per job and
sent as it is costs nothing beyond the map itself, on a path that runs
thousands of times a second.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

READY: Literal["ready"] = "ready"
RUN: Literal["run"] = "run"
STARTED: Literal["started"] = "started"
DONE: Literal["done"] = "done"
KILL: Literal["kill"] = "kill"
STOP: Literal["stop"] = "stop"

# How a run ended, as the worker (or the supervisor, for a worker that died) saw it.
# engine/outcome.py decides what each makes of the job.
Outcome = Literal["completed", "failed", "timeout", "killed", "spawn_error", "worker_died"]


class Ready(TypedDict):
    t: Literal["ready"]
    pid: int


class Run(TypedDict, total=False):
    t: Literal["run"]
    command: str
    cwd: str
    env: dict[str, str]  # only when it differs from the last one this worker was sent
    env_add: dict[str, str]  # the job's own variables (id, attempt, worker, run marker)
    timeout: float  # 0: none
    grace: float  # seconds between SIGTERM and SIGKILL
    log: str  # the file that captures the job's output
    log_max: int  # bytes kept of it; 0: all
    uid: int | None  # run as this user (a root daemon only)
    gid: int | None


class Started(TypedDict):
    t: Literal["started"]
    pid: int
    pid_started: float  # the process's start time: with the pid, it names the process


class Done(TypedDict, total=False):
    t: Literal["done"]
    outcome: Outcome
    exit_code: int | None
    signal: int | None
    error: str | None
    log: str | None
    log_error: str | None  # output was lost (disk full, ...), the run itself was not
    pid: int  # only when no `started` was sent (a short run)


class Kill(TypedDict):
    t: Literal["kill"]
    reason: str
    # Seconds from SIGTERM to SIGKILL, when shorter than the run's own grace.
    grace: NotRequired[float]


class Stop(TypedDict):
    t: Literal["stop"]


def ready(pid: int) -> Ready:
    return {"t": READY, "pid": pid}


def started(pid: int, pid_started: float) -> Started:
    return {"t": STARTED, "pid": pid, "pid_started": pid_started}


def done(
    outcome: Outcome,
    error: str | None = None,
    exit_code: int | None = None,
    signal: int | None = None,
    log: str | None = None,
    log_error: str | None = None,
) -> Done:
    return {
        "t": DONE,
        "outcome": outcome,
        "exit_code": exit_code,
        "signal": signal,
        "error": error,
        "log": log,
        "log_error": log_error,
    }


def kill(reason: str, grace: float | None = None) -> Kill:
    message: Kill = {"t": KILL, "reason": reason}
    if grace is not None:
        message["grace"] = grace
    return message


def stop() -> Stop:
    return {"t": STOP}
