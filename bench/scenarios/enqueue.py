"""2 and 3. Enqueue rates: one job per request (1 and 16 clients), and one big batch.

The daemon runs with no workers, so that running the jobs takes no CPU from
accepting them; it keeps the durability it ships with (synchronous=FULL: an
acknowledged job is on disk).
"""

from __future__ import annotations

import json
import time

from bench.context import Context
from bench.daemon import BenchDaemon
from bench.procs import PYTHON, queuectl_argv, run_together, shares, timed_run
from bench.report import Figure, runs_detail
from bench.stats import median

SINGLE = "2 enqueue, 1 job/request"
BATCHED = "3 enqueue, batched"
CONCURRENT_CLIENTS = 16
START_DELAY = 1.5  # every client has started and connected before the clock starts


def concurrent_rate(clients: int, total: int) -> float:
    """Jobs per second that `clients` processes enqueue together, one job per request."""
    with BenchDaemon(workers=0) as daemon:
        start_at = time.time() + START_DELAY
        commands = [
            [PYTHON, "-m", "bench.load.enqueuer", str(daemon.home), str(n), str(start_at)]
            for n in shares(total, clients)
        ]
        try:
            seconds = run_together(commands, "an enqueuing client failed")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; daemon log: {daemon.log_tail()}") from None
        with daemon.client() as client:
            pending = client.status()["jobs"]["pending"]
        if pending != total:
            raise RuntimeError(f"enqueued {total} jobs but the daemon holds {pending}")
    return total / seconds


def batched_rate(ctx: Context, total: int) -> float:
    """Jobs per second of one `queuectl enqueue --file` of `total` jobs (CLI start included)."""
    jobs_file = ctx.folder("enqueue") / f"jobs-{total}.jsonl"
    if not jobs_file.exists():
        line = json.dumps({"command": "true"}) + "\n"
        jobs_file.write_text(line * total)
    with BenchDaemon(workers=0) as daemon:
        elapsed, _ = timed_run(queuectl_argv(str(daemon.home), "enqueue", "--file", str(jobs_file)))
        with daemon.client() as client:
            pending = client.status()["jobs"]["pending"]
        if pending != total:
            raise RuntimeError(f"enqueued {total} jobs but the daemon holds {pending}")
    return total / elapsed


def run(ctx: Context) -> list[Figure]:
    p = ctx.profile
    figures = []
    for clients, total in ((1, p.enqueue_single), (CONCURRENT_CLIENTS, p.enqueue_concurrent)):
        rates = []
        for i in range(p.runs):
            rates.append(concurrent_rate(clients, total))
            ctx.log(f"enqueue {clients} client(s) run {i + 1}: {rates[-1]:,.0f}/s")
        figures.append(
            Figure(
                SINGLE,
                f"{clients} client{'s' if clients > 1 else ''} (Client library)",
                median(rates),
                "jobs/s",
                key=f"enqueue.clients.{clients}",
                detail=runs_detail(rates, "jobs/s", total, "jobs"),
            )
        )
    return figures


def run_batched(ctx: Context) -> list[Figure]:
    p = ctx.profile
    rates = []
    for i in range(p.runs):
        rates.append(batched_rate(ctx, p.enqueue_batched))
        ctx.log(f"enqueue --file run {i + 1}: {rates[-1]:,.0f}/s")
    return [
        Figure(
            BATCHED,
            f"{p.enqueue_batched:,} jobs, one `queuectl enqueue --file`",
            median(rates),
            "jobs/s",
            key="enqueue.batched",
            detail=runs_detail(rates, "jobs/s", p.enqueue_batched, "jobs") + "; CLI start included",
        )
    ]
