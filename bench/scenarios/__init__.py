"""The scenarios, in the order `all` runs them. Each returns a list of Figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.context import Context
from bench.report import Figure


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    run: Callable[[Context], list[Figure]]


def _lazy(module: str, function: str = "run") -> Callable[[Context], list[Figure]]:
    """Import a scenario only when it runs (peers pull in optional packages)."""

    def call(ctx: Context) -> list[Figure]:
        from importlib import import_module

        return getattr(import_module(f"bench.scenarios.{module}"), function)(ctx)

    return call


SCENARIOS: list[Scenario] = [
    Scenario("spawn", "1 spawn floor", _lazy("spawn_floor")),
    Scenario("enqueue", "2 enqueue, one job per request", _lazy("enqueue")),
    Scenario("batched", "3 enqueue, batched", _lazy("enqueue", "run_batched")),
    Scenario("e2e", "4 end to end", _lazy("drain")),
    Scenario("latency", "5 latency", _lazy("latency")),
    Scenario("scale", "6 scale", _lazy("scale")),
    Scenario("idle", "7 idle cost", _lazy("idle")),
    Scenario("cli", "8 CLI latency", _lazy("cli_latency")),
    Scenario("peers", "9 peers", _lazy("peers")),
    Scenario("dashboard", "10 dashboard", _lazy("dashboard")),
]

BY_NAME = {s.name: s for s in SCENARIOS}
