"""7. Idle cost: CPU time and memory of a daemon with nothing to do.

An event-driven daemon sleeps in the kernel until something happens; a
polling one burns CPU on every tick. Measured twice: the daemon alone (no
workers) and with 8 idle workers (their CPU and memory counted separately).
"""

from __future__ import annotations

import time

import psutil

from bench.context import Context
from bench.daemon import BenchDaemon
from bench.report import Figure

SCENARIO = "7 idle"
SETTLE_SECONDS = 2.0  # start-up work (imports, first dispatch pass) is not idle cost
IDLE_WORKERS = 8


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def _watch(daemon: BenchDaemon, seconds: float) -> tuple[float, float]:
    """CPU-seconds per minute of (the daemon, its workers) over `seconds` of idleness."""
    time.sleep(SETTLE_SECONDS)
    daemon_proc = daemon.process()
    workers = daemon.worker_processes()
    before = _cpu_seconds([daemon_proc]), _cpu_seconds(workers)
    time.sleep(seconds)
    after = _cpu_seconds([daemon_proc]), _cpu_seconds(workers)
    scale = 60.0 / seconds
    return (after[0] - before[0]) * scale, (after[1] - before[1]) * scale


def run(ctx: Context) -> list[Figure]:
    seconds = ctx.profile.idle_seconds
    watched = f"watched {seconds:g} s, per minute"
    with BenchDaemon(workers=0) as daemon:
        alone_cpu, _ = _watch(daemon, seconds)
        alone_rss = daemon.rss_bytes()
    with BenchDaemon(workers=IDLE_WORKERS) as daemon:
        daemon_cpu, workers_cpu = _watch(daemon, seconds)
        daemon_rss = daemon.rss_bytes()
        workers_rss = sum(w.memory_info().rss for w in daemon.worker_processes())
    with_workers = f"with {IDLE_WORKERS} idle workers"
    return [
        Figure(
            SCENARIO, "daemon alone: CPU", alone_cpu, "CPU-s/min", key="idle.cpu", detail=watched
        ),
        Figure(SCENARIO, "daemon alone: RSS", alone_rss / 2**20, "MB", key="idle.rss"),
        Figure(
            SCENARIO,
            f"{with_workers}: daemon CPU",
            daemon_cpu,
            "CPU-s/min",
            key="idle.cpu.fleet",
            detail=watched,
        ),
        Figure(
            SCENARIO,
            f"{with_workers}: workers' CPU",
            workers_cpu,
            "CPU-s/min",
            key="idle.cpu.workers",
            detail=watched,
        ),
        Figure(SCENARIO, f"{with_workers}: daemon RSS", daemon_rss / 2**20, "MB"),
        Figure(
            SCENARIO,
            f"{with_workers}: workers' RSS",
            workers_rss / 2**20,
            "MB",
            detail="sum over the workers (shared pages counted in each)",
        ),
    ]
