"""The Prometheus endpoint (`queuectld --metrics HOST:PORT`).

Counters and histograms are updated by the event loop as jobs move (see
telemetry.py). Gauges of jobs by state and of busy/idle workers are read at
scrape time, from the event loop, through `snapshot`: the scrape is answered
by prometheus-client's HTTP thread, which must not touch the store or the
fleet itself.

prometheus-client is an optional dependency (`pip install 'queuectl[metrics]'`);
it is imported only when --metrics is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("queuectld.metrics")

# Seconds: from a shell one-liner to a long batch job.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
    7200, 21600,
)  # fmt: skip


class MetricsUnavailable(Exception):
    """--metrics was asked for but cannot be served; the message says why."""


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (all interfaces) -> (host, port). Raises ValueError."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, as [{host}]:{port_text}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range")
    return host or "0.0.0.0", port


class PrometheusMetrics:
    """Implements telemetry.MetricsSink, and serves the registry over HTTP."""

    def __init__(self, snapshot: Callable[[], dict | None]):
        try:
            import prometheus_client
            from prometheus_client.core import GaugeMetricFamily
        except ImportError:
            raise MetricsUnavailable(
                "--metrics needs the prometheus-client package: pip install 'queuectl[metrics]'"
            ) from None
        self._client = prometheus_client
        self._gauge_family = GaugeMetricFamily
        self._snapshot = snapshot
        self._server: Any = None
        self._thread: Any = None
        self.address: tuple[str, int] | None = None
        prometheus_client.disable_created_metrics()  # *_created series: noise for our use
        self.registry = registry = prometheus_client.CollectorRegistry()
        prometheus_client.ProcessCollector(registry=registry)
        counter, histogram = prometheus_client.Counter, prometheus_client.Histogram
        by_queue = ["queue"]
        self.enqueued = counter(
            "queuectl_jobs_enqueued", "Jobs accepted by enqueue.", by_queue, registry=registry
        )
        self.started = counter(
            "queuectl_jobs_started", "Attempts started (a retry counts again).", by_queue,
            registry=registry,
        )  # fmt: skip
        self.completed = counter(
            "queuectl_jobs_completed", "Jobs that completed (exit code 0).", by_queue,
            registry=registry,
        )  # fmt: skip
        self.failed_attempts = counter(
            "queuectl_job_attempts_failed",
            "Attempts that failed: non-zero exit, signal, timeout, spawn error, worker death.",
            by_queue,
            registry=registry,
        )
        self.dead = counter(
            "queuectl_jobs_dead", "Jobs moved to the DLQ (retries used up).", by_queue,
            registry=registry,
        )  # fmt: skip
        self.run_seconds = histogram(
            "queuectl_job_run_seconds",
            "Run time of attempts that ran to their end.",
            by_queue,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.wait_seconds = histogram(
            "queuectl_job_wait_seconds",
            "Time from when an attempt was due (enqueue, delay or retry time) to its start.",
            by_queue,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        registry.register(_StateCollector(self))

    # -- the HTTP endpoint ---------------------------------------------------

    def start(self, host: str, port: int) -> tuple[str, int]:
        try:
            result = self._client.start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsUnavailable(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from None
        self._server, self._thread = result
        bound = self._server.server_address
        self.address = (bound[0], bound[1])
        return self.address

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- telemetry.MetricsSink -------------------------------------------------

    def jobs_enqueued(self, queue: str, count: int) -> None:
        self.enqueued.labels(queue).inc(count)

    def job_started(self, queue: str, waited: float) -> None:
        self.started.labels(queue).inc()
        self.wait_seconds.labels(queue).observe(waited)

    def job_finished(self, queue: str, state: str, counted: bool, ran: float) -> None:
        if not counted:
            return  # canceled or interrupted: neither a success nor a failure
        self.run_seconds.labels(queue).observe(ran)
        if state == "completed":
            self.completed.labels(queue).inc()
            return
        self.failed_attempts.labels(queue).inc()
        if state == "dead":
            self.dead.labels(queue).inc()


class _StateCollector:
    """Gauges read at scrape time: jobs by state, workers by state."""

    def __init__(self, metrics: PrometheusMetrics):
        self.metrics = metrics

    def describe(self) -> list:
        return []  # read at scrape time only; nothing to check at registration

    def collect(self):
        snapshot = self.metrics._snapshot()
        if snapshot is None:
            return
        family = self.metrics._gauge_family
        jobs = family("queuectl_jobs", "Jobs by state, now.", labels=["state"])
        for state, count in snapshot["jobs"].items():
            jobs.add_metric([state], count)
        yield jobs
        workers = family("queuectl_workers", "Worker processes by state, now.", labels=["state"])
        for state in ("busy", "idle"):
            workers.add_metric([state], snapshot["workers"][state])
        yield workers
        target = family("queuectl_workers_target", "Size the fleet is kept at.")
        target.add_metric([], snapshot["workers"]["target"])
        yield target
