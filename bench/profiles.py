"""How big each scenario is in each mode: full (the published figures), quick, smoke."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    runs: int  # repetitions of a measurement; the table shows the median
    spawn_jobs: int  # processes started per spawn-floor run
    enqueue_single: int  # requests sent by the one client
    enqueue_concurrent: int  # requests sent by the 16 clients together
    enqueue_batched: int  # jobs in the one `enqueue --file`
    drain_jobs: int  # jobs drained end to end (ours and the peers')
    latency_jobs: int  # enqueue-to-start samples per run
    scale_jobs: int  # pending jobs in the store for the scale scenario
    scale_probes: int  # repetitions of each probe at scale
    idle_seconds: float  # how long the idle daemon is watched
    cli_runs: int  # invocations per CLI command
    peer_latency_seconds: float  # cap on one peer's latency run (huey polls)
    notes: tuple[str, ...] = ()


FULL = Profile(
    name="full",
    runs=3,
    spawn_jobs=5_000,
    enqueue_single=2_000,
    enqueue_concurrent=16_000,
    enqueue_batched=100_000,
    drain_jobs=5_000,
    latency_jobs=1_000,
    scale_jobs=1_000_000,
    scale_probes=9,
    idle_seconds=60.0,
    cli_runs=31,
    peer_latency_seconds=60.0,
)

QUICK = Profile(
    name="quick",
    runs=1,
    spawn_jobs=1_000,
    enqueue_single=500,
    enqueue_concurrent=3_200,
    enqueue_batched=50_000,
    drain_jobs=1_000,
    latency_jobs=200,
    scale_jobs=50_000,
    scale_probes=5,
    idle_seconds=6.0,
    cli_runs=11,
    peer_latency_seconds=4.0,
    notes=(
        "quick mode: one run per figure instead of the median of 3; 1,000 jobs drained "
        "instead of 5,000; 50,000 jobs batched and at scale instead of 100,000 and "
        "1,000,000; 200 latency samples instead of 1,000 (peers' runs capped at 4 s); idle "
        "watched 6 s instead of 60 s (scaled to a minute). Use --full for the published "
        "figures.",
    ),
)

SMOKE = Profile(
    name="smoke",
    runs=1,
    spawn_jobs=100,
    enqueue_single=50,
    enqueue_concurrent=160,
    enqueue_batched=2_000,
    drain_jobs=100,
    latency_jobs=20,
    scale_jobs=2_000,
    scale_probes=2,
    idle_seconds=1.0,
    cli_runs=2,
    peer_latency_seconds=2.0,
    notes=("smoke mode: tiny sizes that only check the suite works; the figures mean nothing.",),
)

PROFILES = {p.name: p for p in (FULL, QUICK, SMOKE)}
