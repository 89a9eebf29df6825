"""1. Spawn floor: how fast N Python processes can start `/bin/sh -c true` at all.

No queue is involved; every end-to-end figure is a ratio of this one.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.procs import PYTHON, run_together, shares
from bench.report import Figure, runs_detail
from bench.stats import median

SCENARIO = "1 spawn floor"
START_DELAY = 1.0  # lets every spawner finish its own start-up before the clock starts


def spawn_rate(processes: int, total: int) -> float:
    """Spawns per second of `processes` parallel spawners sharing `total` spawns."""
    start_at = time.time() + START_DELAY
    commands = [
        [PYTHON, "-m", "bench.load.spawner", str(n), str(start_at)]
        for n in shares(total, processes)
    ]
    return total / run_together(commands, "a spawner failed")


def floor(ctx: Context, processes: int) -> tuple[float, list[float]]:
    """The median spawn floor for this many processes (and its runs), once per suite run."""

    def measure() -> tuple[float, list[float]]:
        rates = []
        for run in range(ctx.profile.runs):
            rates.append(spawn_rate(processes, ctx.profile.spawn_jobs))
            ctx.log(f"spawn floor N={processes} run {run + 1}: {rates[-1]:,.0f}/s")
        return median(rates), rates

    return ctx.once(f"spawn-floor-{processes}", measure)


def run(ctx: Context) -> list[Figure]:
    figures = []
    for n in (ctx.cores, 2 * ctx.cores):
        rate, rates = floor(ctx, n)
        figures.append(
            Figure(
                SCENARIO,
                f"N={n} processes",
                rate,
                "jobs/s",
                key=f"spawn.{n}",
                detail=runs_detail(rates, "jobs/s", ctx.profile.spawn_jobs, "spawns"),
            )
        )
    return figures
