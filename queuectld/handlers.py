"""One handler per protocol op. Each takes validated args and returns a result.

Handlers raise ProtocolError for anything the client should hear about; the
server turns other exceptions into an `internal` error without dropping the
connection.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from protocol import PROTOCOL_VERSION
from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import JOB_STATES, TERMINAL_STATES, validate_job_spec
from protocol.times import parse_iso, to_iso
from queuectld import __version__
from queuectld.config import SETTINGS, Config
from queuectld.dispatcher import CANCELED_BY_USER
from queuectld.store import NewJob, Store, StoreError, StoreUnavailable

if TYPE_CHECKING:
    from queuectld.daemon import Daemon

Handler = Callable[[dict], Awaitable[Any]]
DEFAULT_PAGE = 100
MAX_PAGE = 10_000
LOG_CHUNK = 256 * 1024


class Handlers:
    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.table: dict[str, Handler] = {
            "hello": self.hello,
            "enqueue": self.enqueue,
            "get_job": self.get_job,
            "list_jobs": self.list_jobs,
            "status": self.status,
            "cancel": self.cancel,
            "dlq_list": self.dlq_list,
            "dlq_retry": self.dlq_retry,
            "worker_scale": self.worker_scale,
            "worker_stop": self.worker_stop,
            "config_get": self.config_get,
            "config_set": self.config_set,
            "config_list": self.config_list,
            "logs": self.logs,
            "wait": self.wait,
            "shutdown": self.shutdown,
        }

    async def handle(self, op: str, args: dict) -> Any:
        try:
            return await self.table[op](args)
        except StoreError as exc:
            raise ProtocolError(ErrorCode(exc.code), exc.message) from None
        except StoreUnavailable as exc:
            raise ProtocolError(ErrorCode.UNAVAILABLE, str(exc)) from None

    def _store(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future:
        return self.daemon.runner.call(fn, *args, **kwargs)

    # -- session ---------------------------------------------------------

    async def hello(self, args: dict) -> dict:
        return {
            "protocol": PROTOCOL_VERSION,
            "server": f"queuectld {__version__}",
            "pid": os.getpid(),
        }

    # -- jobs ------------------------------------------------------------

    async def enqueue(self, args: dict) -> dict:
        config = self.daemon.config
        specs = args["jobs"]
        if len(specs) > config["max-batch"]:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"batch of {len(specs)} jobs exceeds max-batch {config['max-batch']}",
            )
        cwd = args.get("cwd") or "/"
        environ = args.get("environ")
        if environ is None:
            environ = dict(os.environ)
        now = time.time()
        single = len(specs) == 1
        jobs = [
            self._new_job(spec, None if single else i, cwd, environ, now, config)
            for i, spec in enumerate(specs)
        ]
        ids = await self._store(Store.add_jobs, jobs, now)
        self.daemon.dispatcher.kick()
        return {"ids": ids}

    @staticmethod
    def _new_job(
        spec: Any, index: int | None, cwd: str, environ: dict, now: float, config: Config
    ) -> NewJob:
        spec = validate_job_spec(spec, index)
        what = "job" if index is None else f"job #{index + 1}"
        command = spec["command"]
        if len(command.encode()) > config["max-command-bytes"]:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"{what}: command exceeds max-command-bytes {config['max-command-bytes']}",
            )
        env = spec.get("env") or {}
        if sum(len(k) + len(v) for k, v in env.items()) > config["max-env-bytes"]:
            raise ProtocolError(
                ErrorCode.TOO_LARGE, f"{what}: env exceeds max-env-bytes {config['max-env-bytes']}"
            )
        if spec.get("run_at") is not None:
            try:
                run_at = parse_iso(spec["run_at"])
            except ValueError:
                raise ProtocolError(
                    ErrorCode.INVALID_JOB,
                    f"{what}: run_at {spec['run_at']!r} is not an ISO 8601 time",
                ) from None
        else:
            run_at = now + float(spec.get("delay") or 0)
        timeout = spec.get("timeout")
        return NewJob(
            id=spec.get("id"),
            command=command,
            max_retries=spec.get("max_retries", config["max-retries"]),
            priority=spec.get("priority", 0),
            run_at=run_at,
            timeout=float(config["job-timeout"] if timeout is None else timeout),
            queue=spec.get("queue", "default"),
            cwd=cwd,
            environ=environ,
            env=env,
        )

    async def get_job(self, args: dict) -> dict:
        record = await self._store(Store.get_job, args["id"])
        if record is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no job {args['id']!r}")
        return record

    async def list_jobs(self, args: dict) -> dict:
        state = args.get("state")
        if state is not None and state not in JOB_STATES:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"unknown state {state!r} (states: {', '.join(JOB_STATES)})"
            )
        limit = min(args.get("limit") or DEFAULT_PAGE, MAX_PAGE)
        jobs, cursor = await self._store(
            Store.list_jobs, state, args.get("queue"), limit, args.get("after")
        )
        return {"jobs": jobs, "next": cursor}

    async def status(self, args: dict) -> dict:
        counts = await self._store(Store.count_by_state)
        supervisor = self.daemon.supervisor
        workers = supervisor.workers.values()
        busy = sum(1 for w in workers if w.busy)
        return {
            "jobs": {state: counts.get(state, 0) for state in JOB_STATES},
            "workers": {
                "target": supervisor.target,
                "alive": len(supervisor.workers),
                "busy": busy,
                "idle": sum(1 for w in workers if w.idle),
                "running": [
                    {
                        "worker": w.id,
                        "pid": w.pid,
                        "job": w.run.job.id,
                        "job_pid": w.run.pid,
                        "started_at": to_iso(w.run.started),
                    }
                    for w in workers
                    if w.run is not None
                ],
            },
            "daemon": {
                "pid": os.getpid(),
                "version": __version__,
                "started_at": to_iso(self.daemon.started_at),
                "uptime": round(time.time() - self.daemon.started_at, 3),
                "home": str(self.daemon.home),
                "stopping": self.daemon.stopping,
            },
        }

    async def cancel(self, args: dict) -> dict:
        job_id = args["id"]
        if self.daemon.dispatcher.active.get(job_id) is not None:
            waiter = self.daemon.events.subscribe(job_id)
            try:
                self.daemon.dispatcher.kill_running(job_id, CANCELED_BY_USER)
                await waiter
            finally:
                self.daemon.events.unsubscribe(job_id, waiter)
            return await self.get_job({"id": job_id})
        record = await self._store(Store.cancel_waiting_job, job_id, time.time())
        self.daemon.events.job_changed(job_id, "canceled")
        return record

    async def dlq_list(self, args: dict) -> dict:
        return await self.list_jobs({**args, "state": "dead"})

    async def dlq_retry(self, args: dict) -> dict:
        job_id = args.get("id")
        if (job_id is None) == (not args.get("all")):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "dlq_retry: give either 'id' or 'all'")
        ids = await self._store(Store.retry_dead_jobs, job_id, time.time())
        self.daemon.dispatcher.kick()
        return {"ids": ids}

    # -- fleet -------------------------------------------------------------

    async def worker_scale(self, args: dict) -> dict:
        count = args["count"]
        self._refuse_while_stopping()
        await self._set_config("workers", count)
        self.daemon.supervisor.scale(count)
        return {"target": count}

    async def worker_stop(self, args: dict) -> dict:
        supervisor = self.daemon.supervisor
        busy = len(supervisor.busy_workers())
        await self._set_config("workers", 0)
        supervisor.scale(0)
        if args.get("now"):
            for worker in supervisor.busy_workers():
                self.daemon.dispatcher.interrupt_worker(worker)
        if args.get("wait", True):
            await supervisor.wait_until_empty()
        return {"target": 0, "was_busy": busy, "alive": len(supervisor.workers)}

    # -- settings ------------------------------------------------------------

    async def config_get(self, args: dict) -> dict:
        key = args["key"]
        if key not in SETTINGS:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown setting {key!r}")
        return {"key": key, "value": self.daemon.config[key]}

    async def config_set(self, args: dict) -> dict:
        key, value = args["key"], args["value"]
        if key == "workers":
            self._refuse_while_stopping()
        parsed = await self._set_config(key, value)
        if key == "workers":
            self.daemon.supervisor.scale(parsed)
        return {"key": key, "value": parsed}

    def _refuse_while_stopping(self) -> None:
        if self.daemon.stopping:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN, "the daemon is shutting down")

    async def _set_config(self, key: str, value: Any) -> Any:
        try:
            parsed = Config.parse(key, value)
        except KeyError:
            raise ProtocolError(
                ErrorCode.NOT_FOUND, f"unknown setting {key!r} (settings: {', '.join(SETTINGS)})"
            ) from None
        except ValueError as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{key}: {exc}") from None
        await self._store(Store.set_config, key, str(parsed))
        self.daemon.config.values[key] = parsed
        return parsed

    async def config_list(self, args: dict) -> dict:
        return {
            key: {
                "value": self.daemon.config[key],
                "default": setting.default,
                "help": setting.help,
            }
            for key, setting in SETTINGS.items()
        }

    # -- output ------------------------------------------------------------

    async def logs(self, args: dict) -> dict:
        job_id = args["id"]
        offset = args.get("offset", 0)
        limit = min(args.get("limit") or LOG_CHUNK, LOG_CHUNK)
        deadline = time.monotonic() + min(args.get("wait") or 0, 30)
        settle_until = time.monotonic() + 1.0
        while True:
            seq, run, state, path = await self._store(Store.job_log_path, job_id, args.get("run"))
            active = self.daemon.dispatcher.active.get(job_id)
            if state == "processing" and active is None and time.monotonic() < settle_until:
                # The run ended (or was just claimed) while we read the store: its final
                # log path is still being written. Answering now would tell a follower
                # the run is over before it has read the last of the output.
                await asyncio.sleep(0.01)
                continue
            running = active is not None and active.job.run == run
            if running:
                path = active.log_path
            data = _read_chunk(path, offset, limit)
            if data or not running or time.monotonic() >= deadline:
                return {
                    "run": run,
                    "state": state,
                    "running": running,
                    "data": data,
                    "offset": offset + len(data),
                }
            # Following a live job: its log grows in a file only the worker writes.
            await asyncio.sleep(0.2)

    async def wait(self, args: dict) -> dict:
        ids = list(dict.fromkeys(args["ids"]))
        events = self.daemon.events
        # Subscribe before reading states so a job finishing in between is not missed.
        waiters = {job_id: events.subscribe(job_id) for job_id in ids}
        try:
            states = await self._store(_states_of, ids)
            missing = [job_id for job_id, state in states.items() if state is None]
            if missing:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"no job {missing[0]!r}")
            pending = [waiters[j] for j, s in states.items() if s not in TERMINAL_STATES]
            if pending:
                timeout = args.get("timeout")
                await asyncio.wait(pending, timeout=timeout)
            states = await self._store(_states_of, ids)
        finally:
            for job_id, waiter in waiters.items():
                events.unsubscribe(job_id, waiter)
        done = all(state in TERMINAL_STATES for state in states.values())
        return {"states": states, "done": done}

    # -- daemon ------------------------------------------------------------

    async def shutdown(self, args: dict) -> dict:
        self.daemon.request_stop(now=bool(args.get("now")))
        return {"stopping": True, "pid": os.getpid()}


def _states_of(store: Store, ids: list[str]) -> dict[str, str | None]:
    return {job_id: store.job_state(job_id) for job_id in ids}


def _read_chunk(path: str | None, offset: int, limit: int) -> bytes:
    if not path:
        return b""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(limit)
    except FileNotFoundError:
        return b""
