"""Where the daemon reports what happens to jobs, for whoever watches.

The dispatcher and the handlers call these methods at the moments that matter
(enqueued, started, finished); each watcher that is switched on gets told:
the Prometheus metrics (`--metrics`) and the service manager's STATUS line
(under systemd). With neither, every call is a cheap no-op.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Protocol


class MetricsSink(Protocol):
    def jobs_enqueued(self, queue: str, count: int) -> None: ...
    def job_started(self, queue: str, waited: float) -> None: ...
    def job_finished(self, queue: str, state: str, counted: bool, ran: float) -> None: ...


class Telemetry:
    def __init__(self) -> None:
        self.metrics: MetricsSink | None = None
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever job counts or busy workers may have changed."""
        self._listeners.append(listener)

    def changed(self) -> None:
        for listener in self._listeners:
            listener()

    def jobs_enqueued(self, queues: Iterable[str]) -> None:
        if self.metrics is not None:
            for queue, count in Counter(queues).items():
                self.metrics.jobs_enqueued(queue, count)
        self.changed()

    def job_started(self, queue: str, waited: float) -> None:
        if self.metrics is not None:
            self.metrics.job_started(queue, max(0.0, waited))
        self.changed()

    def job_finished(self, queue: str, state: str, counted: bool, ran: float) -> None:
        """`state` is the job's new state; `counted` says the attempt ran to its end."""
        if self.metrics is not None:
            self.metrics.job_finished(queue, state, counted, max(0.0, ran))
        self.changed()
