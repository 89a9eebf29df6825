"""The worker fleet: spawn, reap and retire worker processes to match a target.

Read it like an arbiter: `maintain()` is the one place that compares the fleet
with its target and acts; `stop_gracefully()` and `stop_now()` are the two
ways of ending it. Jobs themselves are the dispatcher's business; the
supervisor only carries its messages to and from the workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.framing import FrameDecoder, FrameError, pack_frame
from queuectld.fleet import messages
from queuectld.fleet.procutil import describe_exit
from queuectld.store.base import FleetFigures

log = logging.getLogger("queuectld.supervisor")

REAP_CHECK_SECONDS = 0.05
REAP_GIVE_UP_SECONDS = 5.0

# A worker that dies before it is ready cannot have been killed by a job: the
# interpreter or the installation is broken, and respawning it only spins. This
# many of them in a row halt the fleet until it is scaled or the daemon restarts.
HALT_AFTER_BOOT_FAILURES = 5

# Fleet maximum unless `queuectld --max-workers` says otherwise: a worker is a
# Python process (some 20 MB), and more of them than a few per core only queue
# for the CPU; the floor keeps small machines useful for jobs that mostly wait.
WORKERS_PER_CORE = 8
MIN_MAX_WORKERS = 16


def default_max_workers() -> int:
    return max(MIN_MAX_WORKERS, WORKERS_PER_CORE * (os.cpu_count() or 1))


def fleet_size_error(count: int, maximum: int) -> str | None:
    """Why a fleet of `count` workers is refused, or None when it is not."""
    if count <= maximum:
        return None
    return (
        f"{count} workers is more than the fleet maximum of {maximum} "
        f"(raise it with queuectld --max-workers)"
    )


@dataclass(eq=False)
class Worker:
    id: int
    proc: subprocess.Popen
    sock: socket.socket
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    ready: bool = False
    busy: bool = False
    retiring: bool = False  # told to exit; takes no new job
    outbox: bytearray = field(default_factory=bytearray)
    run: Any = None  # the dispatcher's record of the job this worker runs
    environ: Any = None  # the last job environment sent to it (the dispatcher's)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def idle(self) -> bool:
        return self.ready and not self.busy and not self.retiring


class Supervisor:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_message: Callable[[Worker, dict], None],
        on_exit: Callable[[Worker, int | None], None],
        on_idle: Callable[[], None],
        max_workers: int | None = None,
    ):
        self.loop = loop
        self.max_workers = max_workers or default_max_workers()
        self.on_message = on_message
        self.on_exit = on_exit
        self.on_idle = on_idle
        self.target = 0
        self.workers: dict[int, Worker] = {}
        self.stopping = False
        self._next_id = 1
        self.boot_failures = 0  # workers in a row that died before they were ready
        self.halted: str | None = None  # why the fleet stopped respawning
        self._emptied: asyncio.Event = asyncio.Event()
        self._emptied.set()

    # -- the fleet against its target --------------------------------------

    def scale(self, count: int) -> None:
        """Aim at `count` workers (callers refuse more than `max_workers`; this
        caps as a last defence). A halted fleet tries again."""
        self.target = min(count, self.max_workers)
        self.halted = None
        self.boot_failures = 0
        self.maintain()

    def maintain(self) -> None:
        active = [w for w in self.workers.values() if not w.retiring]
        if self.stopping:
            return
        if self.halted is None:
            for _ in range(self.target - len(active)):
                self.spawn_worker()
        surplus = len(active) - self.target
        if surplus > 0:
            # Retire idle workers first; busy ones finish their job, then exit.
            ordered = sorted(active, key=lambda w: (w.busy, -w.id))
            for worker in ordered[:surplus]:
                self.retire(worker)

    def spawn_worker(self) -> Worker:
        parent, child = socket.socketpair()
        proc = subprocess.Popen(
            [sys.executable, "-m", "queuectld.fleet.worker", str(child.fileno()), str(os.getpid())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        child.close()
        parent.setblocking(False)
        worker = Worker(self._next_id, proc, parent)
        self._next_id += 1
        self.workers[worker.id] = worker
        self._emptied.clear()
        self.loop.add_reader(parent.fileno(), self._on_readable, worker)
        log.info(
            "worker %d spawned (pid %d)",
            worker.id,
            worker.pid,
            extra={"event": "worker_spawned", "worker": worker.id, "pid": worker.pid},
        )
        return worker

    def retire(self, worker: Worker) -> None:
        if not worker.retiring:
            worker.retiring = True
            self.send(worker, messages.stop())

    def idle_workers(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.idle]

    def busy_workers(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.busy]

    def figures(self) -> FleetFigures:
        """Busy and idle workers and the target, as a daemon's heartbeat records them."""
        workers = self.workers.values()
        return FleetFigures(
            busy=sum(1 for w in workers if w.busy),
            idle=sum(1 for w in workers if w.idle),
            target=self.target,
        )

    # -- stopping ------------------------------------------------------------

    async def stop_gracefully(self) -> None:
        """Take no new jobs; running jobs finish; then every worker exits."""
        self.stopping = True
        for worker in list(self.workers.values()):
            self.retire(worker)
        await self._emptied.wait()

    async def stop_now(self, kill: Callable[[Worker], None]) -> None:
        """Stop at once: `kill` interrupts each running job, then workers exit."""
        self.stopping = True
        for worker in list(self.workers.values()):
            if worker.busy:
                kill(worker)
            self.retire(worker)
        await self._emptied.wait()

    async def wait_until_empty(self) -> None:
        await self._emptied.wait()

    # -- talking to workers --------------------------------------------------

    def send(self, worker: Worker, message: dict) -> None:
        if worker.sock.fileno() < 0:
            return
        worker.outbox += pack_frame(message)
        self._flush(worker)

    def _flush(self, worker: Worker) -> None:
        try:
            sent = worker.sock.send(worker.outbox)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # the worker is gone; its EOF will be handled by the reader
        del worker.outbox[:sent]
        if worker.outbox:
            self.loop.add_writer(worker.sock.fileno(), self._on_writable, worker)

    def _on_writable(self, worker: Worker) -> None:
        self.loop.remove_writer(worker.sock.fileno())
        self._flush(worker)

    def _on_readable(self, worker: Worker) -> None:
        try:
            data = worker.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._worker_gone(worker)
            return
        try:
            frames = worker.decoder.feed(data)
        except FrameError as exc:
            log.error(
                "worker %d sent a bad frame (%s); killing it",
                worker.id,
                exc,
                extra={"event": "worker_bad_frame", "worker": worker.id, "pid": worker.pid},
            )
            self._kill_process(worker)
            return
        for message in frames:
            kind = message.get("t")
            if kind == messages.READY:
                worker.ready = True
                self.boot_failures = 0
                self.on_idle()
            else:
                self.on_message(worker, message)

    # -- reaping -------------------------------------------------------------

    def _worker_gone(self, worker: Worker) -> None:
        fd = worker.sock.fileno()
        if fd >= 0:
            self.loop.remove_reader(fd)
            self.loop.remove_writer(fd)
        worker.sock.close()
        self._reap(worker, waited=0.0)

    def _reap(self, worker: Worker, waited: float) -> None:
        status = worker.proc.poll()
        if status is None:
            if waited >= REAP_GIVE_UP_SECONDS:
                self._kill_process(worker)
            self.loop.call_later(
                REAP_CHECK_SECONDS, self._reap, worker, waited + REAP_CHECK_SECONDS
            )
            return
        del self.workers[worker.id]
        fields = {"worker": worker.id, "pid": worker.pid, "status": describe_exit(status)}
        if worker.retiring and not worker.busy:
            log.info("worker %d exited", worker.id, extra={"event": "worker_exited", **fields})
        else:
            log.warning(
                "worker %d (pid %d) died: %s",
                worker.id,
                worker.pid,
                describe_exit(status),
                extra={"event": "worker_died", **fields},
            )
        if not worker.ready and not worker.retiring:
            self._boot_failed(describe_exit(status))
        self.on_exit(worker, status)
        if not self.workers:
            self._emptied.set()
        self.maintain()

    def _boot_failed(self, how: str) -> None:
        self.boot_failures += 1
        if self.halted is not None or self.boot_failures < HALT_AFTER_BOOT_FAILURES:
            return
        self.halted = (
            f"{self.boot_failures} workers in a row died before they were ready "
            f"(the last: {how}); not starting more until the fleet is scaled "
            f"or the daemon restarts"
        )
        log.error(
            "fleet halted: %s",
            self.halted,
            extra={"event": "fleet_halted", "failures": self.boot_failures, "status": how},
        )

    def _kill_process(self, worker: Worker) -> None:
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
