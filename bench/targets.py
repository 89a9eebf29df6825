"""The issue's performance targets, checked against the figures of one run."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.report import Figure, format_value

MET, NOT_MET, NOT_MEASURED = "met", "NOT met", "not measured"


@dataclass(frozen=True)
class Target:
    text: str
    key: str
    compare: Callable[[float, float], bool]
    threshold: float
    unit: str

    def check(self, values: dict[str, float]) -> tuple[str, str]:
        value = values.get(self.key)
        if value is None:
            return NOT_MEASURED, "-"
        verdict = MET if self.compare(value, self.threshold) else NOT_MET
        return verdict, format_value(value, self.unit)


def fixed_targets(cores: int) -> list[Target]:
    lt, ge = operator.lt, operator.ge
    return [
        Target(
            f"end to end, N={cores}: >= 80% of spawn floor", f"drain.ratio.{cores}", ge, 0.8, "x"
        ),
        Target(
            "enqueue 1 job/request, 16 clients: >= 5,000 jobs/s",
            "enqueue.clients.16",
            ge,
            5000,
            "jobs/s",
        ),
        Target("enqueue batched: >= 100,000 jobs/s", "enqueue.batched", ge, 100_000, "jobs/s"),
        Target("latency p50 above spawn: < 5 ms", "latency.p50.above", lt, 5, "ms"),
        Target("latency p99 above spawn: < 25 ms", "latency.p99.above", lt, 25, "ms"),
        Target("scale: status < 50 ms", "scale.status", lt, 50, "ms"),
        Target("scale: list --limit 50 < 50 ms", "scale.list", lt, 50, "ms"),
        Target("scale: daemon RSS < 100 MB", "scale.rss", lt, 100, "MB"),
        Target("idle: < 0.2 CPU-s per minute", "idle.cpu", lt, 0.2, "CPU-s/min"),
        Target("idle: daemon RSS < 40 MB", "idle.rss", lt, 40, "MB"),
        Target("CLI: `queuectl status` < 40 ms wall", "cli.status", lt, 40, "ms"),
        Target("CLI: `queuectl enqueue --command true` < 40 ms wall", "cli.enqueue", lt, 40, "ms"),
        Target("dashboard: Jobs page at scale < 100 ms", "web.jobs", lt, 100, "ms"),
        Target("dashboard: Job page at scale < 100 ms", "web.job", lt, 100, "ms"),
        Target("dashboard: 10 open add < 5% of a core to the daemon", "web.cpu", lt, 5, "%"),
    ]


def peer_targets(values: dict[str, float]) -> list[Target]:
    """'Ahead of every peer measured': our throughput above, our latency below, each peer's."""
    targets = []
    peers = sorted({k.split(".")[1] for k in values if k.startswith("peer.")})
    for peer in peers:
        if f"peer.{peer}.drain.ratio" in values:
            targets.append(
                Target(
                    f"ahead of {peer}: throughput (ours / theirs > 1)",
                    f"peer.{peer}.drain.ratio",
                    operator.gt,
                    1.0,
                    "x",
                )
            )
        for pct in ("p50", "p99"):
            if f"peer.{peer}.{pct}.ratio" in values:
                targets.append(
                    Target(
                        f"ahead of {peer}: latency {pct} (theirs / ours > 1)",
                        f"peer.{peer}.{pct}.ratio",
                        operator.gt,
                        1.0,
                        "x",
                    )
                )
    return targets


def evaluate(figures: Sequence[Figure], cores: int) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows."""
    values = {f.key: f.value for f in figures if f.key and f.value is not None}
    rows = []
    for target in fixed_targets(cores) + peer_targets(values):
        verdict, shown = target.check(values)
        rows.append((target.text, shown, verdict))
    return rows
