"""The figures people watch the daemon by: jobs by state and workers by state.

sd_notify's STATUS= line and the Prometheus gauges show the same two maps; the
metrics endpoint asks for them from its own HTTP thread, so the request crosses
to the event loop and waits a bounded time rather than touching loop state.
"""

from __future__ import annotations

import asyncio
import logging

from protocol.messages import JOB_STATES
from queuectld.fleet.supervisor import Supervisor
from queuectld.home import StartupError
from queuectld.store import Store
from queuectld.store.runner import StoreRunner
from queuectld.telemetry.counters import Telemetry

log = logging.getLogger("queuectld")

# A scrape waits this long for the event loop before it answers without gauges.
SCRAPE_WAIT_SECONDS = 5


class Figures:
    def __init__(self, loop: asyncio.AbstractEventLoop, runner: StoreRunner, fleet: Supervisor):
        self.loop = loop
        self.runner = runner
        self.fleet = fleet

    async def current(self) -> tuple[dict, dict]:
        """(jobs by state, workers by state)."""
        counts = await self.runner.call(Store.count_by_state)
        jobs = {state: counts.get(state, 0) for state in JOB_STATES}
        workers = self.fleet.workers.values()
        return jobs, {
            "target": self.fleet.target,
            "alive": len(self.fleet.workers),
            "busy": sum(1 for w in workers if w.busy),
            "idle": sum(1 for w in workers if w.idle),
        }

    def from_another_thread(self) -> dict | None:
        """The figures for the metrics HTTP thread; None when the loop cannot answer."""
        if self.loop.is_closed():
            return None
        future = asyncio.run_coroutine_threadsafe(self.current(), self.loop)
        try:
            jobs, workers = future.result(timeout=SCRAPE_WAIT_SECONDS)
        except Exception as exc:
            log.warning("metrics scrape without job gauges: %s", exc or type(exc).__name__)
            future.cancel()
            return None
        return {"jobs": jobs, "workers": workers}


def serve_metrics(address: tuple[str, int], figures: Figures, telemetry: Telemetry):
    """Start the Prometheus endpoint and feed it the telemetry; StartupError if it cannot."""
    # Imported here: prometheus-client is an extra, needed only with --metrics.
    from queuectld.telemetry.metrics import MetricsUnavailable, PrometheusMetrics

    try:
        metrics = PrometheusMetrics(figures.from_another_thread)
        host, port = metrics.start(*address)
    except MetricsUnavailable as exc:
        raise StartupError(str(exc)) from None
    telemetry.metrics = metrics
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    log.info(
        "serving Prometheus metrics on http://%s/metrics",
        where,
        extra={"event": "metrics_listening", "host": host, "port": port},
    )
    return metrics
