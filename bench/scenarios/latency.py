"""5. Latency: from an enqueue's acknowledgement to the job's process running.

The fleet is idle; each job writes its own start time (`date +%s%N`), and the
client waits for it to finish before enqueueing the next one. The same
command started straight from Python gives the spawn time the targets are
stated above.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.clock import clock_command, read_clock, spawn_latency
from bench.context import Context
from bench.daemon import BenchDaemon
from bench.report import Figure
from bench.stats import median, percentile

SCENARIO = "5 latency, ack to start"
SPAWN_SAMPLES = 200


def latency_samples(workers: int, jobs: int, folder: Path) -> list[float]:
    """Seconds from each enqueue's acknowledgement to its job writing its clock."""
    folder.mkdir(parents=True, exist_ok=True)
    delays = []
    with BenchDaemon(workers=workers) as daemon, daemon.client() as client:
        for i in range(jobs):
            path = folder / f"job-{i}"
            [job_id] = client.enqueue({"command": clock_command(path)})
            acked = time.time()
            client.wait([job_id])
            delays.append(read_clock(path) - acked)
    return delays


def spawn_time(ctx: Context) -> float:
    return ctx.once("spawn-latency", lambda: spawn_latency(ctx.folder("spawn"), SPAWN_SAMPLES))


def our_latency(ctx: Context) -> dict:
    """Medians over runs of p50 and p99, in seconds, once per suite run."""

    def measure() -> dict:
        p50s, p99s = [], []
        for i in range(ctx.profile.runs):
            samples = latency_samples(
                ctx.cores, ctx.profile.latency_jobs, ctx.folder(f"latency-{i}")
            )
            p50s.append(percentile(samples, 50))
            p99s.append(percentile(samples, 99))
            p50, p99 = p50s[-1] * 1e3, p99s[-1] * 1e3
            ctx.log(f"latency run {i + 1}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        return {"p50": median(p50s), "p99": median(p99s), "p50s": p50s, "p99s": p99s}

    return ctx.once("latency", measure)


def run(ctx: Context) -> list[Figure]:
    spawn = spawn_time(ctx)
    ours = our_latency(ctx)
    size = f"{ctx.profile.latency_jobs:,} jobs/run, N={ctx.cores} idle workers"
    runs = "runs: " + ", ".join(f"{v * 1e3:.2f}" for v in ours["p50s"])
    runs99 = "runs: " + ", ".join(f"{v * 1e3:.2f}" for v in ours["p99s"])
    return [
        Figure(
            SCENARIO,
            "spawn time itself (no queue)",
            spawn * 1e3,
            "ms",
            key="latency.spawn",
            detail=f"median of {SPAWN_SAMPLES} direct subprocess starts of the same command",
        ),
        Figure(
            SCENARIO, "p50", ours["p50"] * 1e3, "ms", key="latency.p50", detail=f"{size}; {runs}"
        ),
        Figure(
            SCENARIO, "p99", ours["p99"] * 1e3, "ms", key="latency.p99", detail=f"{size}; {runs99}"
        ),
        Figure(
            SCENARIO,
            "p50 above spawn time",
            (ours["p50"] - spawn) * 1e3,
            "ms",
            key="latency.p50.above",
        ),
        Figure(
            SCENARIO,
            "p99 above spawn time",
            (ours["p99"] - spawn) * 1e3,
            "ms",
            key="latency.p99.above",
        ),
    ]
