"""9. Peers side by side: the same drain and latency measurements on other job queues.

queuectl's own figures come from scenarios 4 and 5 of the same suite run
(N = cores). Its drain clock starts when the jobs fall due, the peers' when
their first job has started, which if anything favours the peers.
"""

from __future__ import annotations

from bench.context import Context
from bench.peers import Peer, all_peers
from bench.report import Figure, runs_detail
from bench.scenarios.drain import drain_rate
from bench.scenarios.latency import our_latency
from bench.stats import median, percentile

SCENARIO = "9 peers"


def _peer_figures(ctx: Context, peer: Peer, ours: dict) -> list[Figure]:
    p, n = ctx.profile, ctx.cores
    rates, p50s, p99s, counts = [], [], [], []
    for i in range(p.runs):
        # A fresh folder per run: the jobs' clock files of an earlier run must not be read.
        folder = ctx.folder(f"peer-{peer.name}-{i}")
        rates.append(p.drain_jobs / peer.drain_seconds(p.drain_jobs, n, folder))
        samples = peer.latency_samples(p.latency_jobs, n, folder, p.peer_latency_seconds)
        if min(samples) < -1.0:  # a job cannot start a second before it was enqueued
            raise RuntimeError(f"{peer.name}: a job's clock predates its enqueue (stale file?)")
        p50s.append(percentile(samples, 50))
        p99s.append(percentile(samples, 99))
        counts.append(len(samples))
        ctx.log(
            f"{peer.name} run {i + 1}: {rates[-1]:,.0f} jobs/s, p50 {p50s[-1] * 1e3:.2f} ms, "
            f"p99 {p99s[-1] * 1e3:.2f} ms ({counts[-1]} samples)"
        )
    rate, p50, p99 = median(rates), median(p50s), median(p99s)
    name = peer.name
    sampled = (
        f"{min(counts):,}-{max(counts):,} samples/run (capped at {p.peer_latency_seconds:g} s)"
    )
    return [
        Figure(
            SCENARIO,
            f"{name}: drain N={n}",
            rate,
            "jobs/s",
            key=f"peer.{name}.drain",
            detail=peer.describe() + "; " + runs_detail(rates, "jobs/s", p.drain_jobs, "jobs"),
        ),
        Figure(
            SCENARIO,
            f"{name}: ours / theirs, throughput",
            ours["drain"] / rate,
            "x",
            key=f"peer.{name}.drain.ratio",
        ),
        Figure(
            SCENARIO,
            f"{name}: latency p50",
            p50 * 1e3,
            "ms",
            key=f"peer.{name}.p50",
            detail=sampled,
        ),
        Figure(SCENARIO, f"{name}: latency p99", p99 * 1e3, "ms", key=f"peer.{name}.p99"),
        Figure(
            SCENARIO,
            f"{name}: theirs / ours, latency p50",
            p50 / ours["p50"],
            "x",
            key=f"peer.{name}.p50.ratio",
        ),
        Figure(
            SCENARIO,
            f"{name}: theirs / ours, latency p99",
            p99 / ours["p99"],
            "x",
            key=f"peer.{name}.p99.ratio",
        ),
    ]


def run(ctx: Context) -> list[Figure]:
    n = ctx.cores
    rate, _ = drain_rate(ctx, n)
    latency = our_latency(ctx)
    ours = {"drain": rate, "p50": latency["p50"], "p99": latency["p99"]}
    figures = [
        Figure(
            SCENARIO,
            f"queuectl: drain N={n}",
            rate,
            "jobs/s",
            key="peer.ours.drain",
            detail="from scenario 4",
        ),
        Figure(
            SCENARIO,
            "queuectl: latency p50",
            ours["p50"] * 1e3,
            "ms",
            key="peer.ours.p50",
            detail="from scenario 5",
        ),
        Figure(SCENARIO, "queuectl: latency p99", ours["p99"] * 1e3, "ms", key="peer.ours.p99"),
    ]
    for peer in all_peers():
        reason = peer.unavailable()
        if reason is not None:
            figures.append(Figure(SCENARIO, f"{peer.name}", None, "", detail=f"skipped: {reason}"))
            continue
        ctx.log(f"peer {peer.name}: {peer.describe()}")
        figures += _peer_figures(ctx, peer, ours)
    return figures
