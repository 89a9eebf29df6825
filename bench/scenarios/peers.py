"""9. Peers side by side: the same drain and latency measurements on other job queues.

Each run of a peer is paired with a run of queuectl taken just before it, so
that both meet the same machine: on a shared machine the load moves within a
suite run, and a figure of ours from scenarios 4 and 5, minutes earlier, would
compare two different machines. Each ratio is the median of the per-run
ratios. Our drain clock starts when the jobs fall due, the peers' when their
first job has started, which if anything favours the peers.
"""

from __future__ import annotations

from bench.context import Context
from bench.peers import Peer, all_peers
from bench.report import Figure, runs_detail
from bench.scenarios.drain import drain_seconds
from bench.scenarios.latency import latency_samples
from bench.stats import median, percentile

SCENARIO = "9 peers"


def _one_run(ctx: Context, peer: Peer, run: int) -> tuple[dict, dict, int]:
    """(ours, theirs, their sample count) of one paired run: drain rate, p50, p99."""
    p, n = ctx.profile, ctx.cores
    seconds, _ = drain_seconds(n, p.drain_jobs)
    mine = latency_samples(n, p.latency_jobs, ctx.folder(f"peer-{peer.name}-ours-{run}"))
    ours = {
        "drain": p.drain_jobs / seconds,
        "p50": percentile(mine, 50),
        "p99": percentile(mine, 99),
    }
    # A fresh folder per run: the jobs' clock files of an earlier run must not be read.
    folder = ctx.folder(f"peer-{peer.name}-{run}")
    rate = p.drain_jobs / peer.drain_seconds(p.drain_jobs, n, folder)
    samples = peer.latency_samples(p.latency_jobs, n, folder, p.peer_latency_seconds)
    if min(samples) < -1.0:  # a job cannot start a second before it was enqueued
        raise RuntimeError(f"{peer.name}: a job's clock predates its enqueue (stale file?)")
    theirs = {"drain": rate, "p50": percentile(samples, 50), "p99": percentile(samples, 99)}
    ctx.log(
        f"{peer.name} run {run + 1}: {rate:,.0f} jobs/s, p50 {theirs['p50'] * 1e3:.2f} ms, "
        f"p99 {theirs['p99'] * 1e3:.2f} ms ({len(samples)} samples); queuectl just before: "
        f"{ours['drain']:,.0f} jobs/s, p50 {ours['p50'] * 1e3:.2f} ms, "
        f"p99 {ours['p99'] * 1e3:.2f} ms"
    )
    return ours, theirs, len(samples)


def _peer_figures(ctx: Context, peer: Peer) -> list[Figure]:
    p, n, name = ctx.profile, ctx.cores, peer.name
    runs = [_one_run(ctx, peer, i) for i in range(p.runs)]
    ours = {key: [r[0][key] for r in runs] for key in ("drain", "p50", "p99")}
    theirs = {key: [r[1][key] for r in runs] for key in ("drain", "p50", "p99")}
    counts = [r[2] for r in runs]
    # Ours over theirs for throughput, theirs over ours for latency: above 1 is ahead.
    lead = {
        "drain": median([o / t for o, t in zip(ours["drain"], theirs["drain"], strict=True)]),
        "p50": median([t / o for o, t in zip(ours["p50"], theirs["p50"], strict=True)]),
        "p99": median([t / o for o, t in zip(ours["p99"], theirs["p99"], strict=True)]),
    }
    cap = p.peer_latency_seconds
    sampled = f"{min(counts):,}-{max(counts):,} samples/run (capped at {cap:g} s)"
    ms = [f"{v * 1e3:.2f}" for v in ours["p50"]]
    return [
        Figure(
            SCENARIO,
            f"{name}: drain N={n}",
            median(theirs["drain"]),
            "jobs/s",
            key=f"peer.{name}.drain",
            detail=peer.describe()
            + "; "
            + runs_detail(theirs["drain"], "jobs/s", p.drain_jobs, "jobs"),
        ),
        Figure(
            SCENARIO,
            f"{name}: queuectl's drain in the paired runs",
            median(ours["drain"]),
            "jobs/s",
            key=f"peer.{name}.ours.drain",
            detail=runs_detail(ours["drain"], "jobs/s", p.drain_jobs, "jobs"),
        ),
        Figure(
            SCENARIO,
            f"{name}: ours / theirs, throughput",
            lead["drain"],
            "x",
            key=f"peer.{name}.drain.ratio",
            detail="median of the per-run ratios",
        ),  # fmt: skip
        Figure(
            SCENARIO,
            f"{name}: latency p50",
            median(theirs["p50"]) * 1e3,
            "ms",
            key=f"peer.{name}.p50",
            detail=sampled,
        ),  # fmt: skip
        Figure(
            SCENARIO,
            f"{name}: latency p99",
            median(theirs["p99"]) * 1e3,
            "ms",
            key=f"peer.{name}.p99",
        ),  # fmt: skip
        Figure(
            SCENARIO,
            f"{name}: queuectl's latency p50 / p99 in the paired runs",
            median(ours["p50"]) * 1e3,
            "ms",
            detail=f"p99 {median(ours['p99']) * 1e3:.2f} ms; p50 runs: {', '.join(ms)}",
        ),
        Figure(
            SCENARIO,
            f"{name}: theirs / ours, latency p50",
            lead["p50"],
            "x",
            key=f"peer.{name}.p50.ratio",
            detail="median of the per-run ratios",
        ),  # fmt: skip
        Figure(
            SCENARIO,
            f"{name}: theirs / ours, latency p99",
            lead["p99"],
            "x",
            key=f"peer.{name}.p99.ratio",
            detail="median of the per-run ratios",
        ),  # fmt: skip
    ]


def run(ctx: Context) -> list[Figure]:
    figures = []
    for peer in all_peers():
        reason = peer.unavailable()
        if reason is not None:
            figures.append(Figure(SCENARIO, f"{peer.name}", None, "", detail=f"skipped: {reason}"))
            continue
        ctx.log(f"peer {peer.name}: {peer.describe()}")
        figures += _peer_figures(ctx, peer)
    return figures
