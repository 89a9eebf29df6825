"""RQ on the local Redis: N `rq worker` processes (the default Worker, a fork per job)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench.clock import clock_command, read_clock
from bench.peers import Peer, sample_latencies, wait_until
from bench.procs import PYTHON, child_env, stop_process

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RESULT_TTL = 600  # seconds; the suite deletes its keys itself, this is a safety net
FILL_BATCH = 1000


class RQPeer(Peer):
    name = "rq"

    def __init__(self) -> None:
        self._runs = 0

    def unavailable(self) -> str | None:
        try:
            from redis import Redis
            from redis.exceptions import RedisError
            from rq import Queue  # noqa: F401
        except ImportError:
            return "rq is not installed (pip install rq)"
        try:
            Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except RedisError as exc:
            return f"no Redis answers at {REDIS_URL} ({exc})"
        return None

    def describe(self) -> str:
        import rq

        return f"RQ {rq.__version__}, local Redis, default Worker"

    def _queue(self):
        from redis import Redis
        from rq import Queue

        self._runs += 1
        name = f"queuectl-bench-{os.getpid()}-{self._runs}"
        return Queue(name, connection=Redis.from_url(REDIS_URL))

    def _workers(self, queue, workers: int, folder: Path, burst: bool) -> list[subprocess.Popen]:
        argv = [PYTHON, "-m", "rq.cli", "worker", "--url", REDIS_URL, queue.name]
        if burst:
            argv.insert(4, "--burst")
        with open(folder / "rq-workers.log", "ab") as log:
            return [
                subprocess.Popen(
                    argv, env=child_env(), stdout=log, stderr=log, start_new_session=True
                )
                for _ in range(workers)
            ]

    def _enqueue(self, queue, command: str):
        from bench.peers.tasks import run_shell

        return queue.enqueue(run_shell, command, result_ttl=RESULT_TTL)

    def _cleanup(self, queue) -> None:
        """Delete this run's queue, jobs and registries (and nothing else in Redis)."""
        from rq.registry import FinishedJobRegistry

        conn = queue.connection
        finished = FinishedJobRegistry(queue.name, connection=conn)
        job_keys = [f"rq:job:{job_id}" for job_id in finished.get_job_ids()]
        for start in range(0, len(job_keys), FILL_BATCH):
            conn.delete(*job_keys[start : start + FILL_BATCH])
        queue.delete(delete_jobs=True)
        for key in conn.scan_iter(match=f"rq:*:{queue.name}"):
            conn.delete(key)

    def drain_seconds(self, jobs: int, workers: int, folder: Path) -> float:
        from rq import Queue
        from rq.registry import FinishedJobRegistry

        from bench.peers.tasks import run_shell

        queue = self._queue()
        first = folder / "rq-first"
        try:
            self._enqueue(queue, clock_command(first))
            rest = [
                Queue.prepare_data(run_shell, args=("true",), result_ttl=RESULT_TTL)
                for _ in range(jobs - 1)
            ]
            for start in range(0, len(rest), FILL_BATCH):
                queue.enqueue_many(rest[start : start + FILL_BATCH])
            finished = FinishedJobRegistry(queue.name, connection=queue.connection)
            procs = self._workers(queue, workers, folder, burst=True)
            try:
                started = read_clock(first, timeout=60)
                wait_until(lambda: finished.count >= jobs, timeout=600)
                return time.time() - started
            finally:
                for proc in procs:
                    stop_process(proc)
        finally:
            self._cleanup(queue)

    def latency_samples(self, jobs: int, workers: int, folder: Path, cap: float) -> list[float]:
        queue = self._queue()
        procs = self._workers(queue, workers, folder, burst=False)
        try:
            self._enqueue(queue, clock_command(folder / "rq-warm-up"))
            read_clock(folder / "rq-warm-up", timeout=60)
            return sample_latencies(
                lambda command: self._enqueue(queue, command), folder, "rq", jobs, cap
            )
        finally:
            for proc in procs:
                stop_process(proc)
            self._cleanup(queue)
