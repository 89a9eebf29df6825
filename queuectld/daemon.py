"""The daemon's composition root: it builds the parts and starts and stops them in order.

Start-up order matters: lock the data home (one daemon per home), open the
store, register this daemon and recover the runs its previous life left, start
the metrics endpoint, then listen (on a socket of our own, or on the one
systemd passed), then start workers, and only then tell systemd READY=1.
Stopping runs the other way and flushes every store write before the store
closes. What each part does lives in its own package (see docs/ARCHITECTURE.md);
handlers get the parts through a HandlerContext, never this object.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

from queuectld import __version__
from queuectld.config import Config, settle_in_force
from queuectld.engine.dispatcher import Dispatcher
from queuectld.engine.events import JobEvents
from queuectld.engine.hooks import Hooks
from queuectld.engine.lease import Lease, daemon_id
from queuectld.engine.output_shipping import OutputShipping
from queuectld.engine.recovery import recover_own_runs
from queuectld.engine.retention import Retention
from queuectld.engine.schedules import Clock, Scheduler
from queuectld.engine.shared_rules import RuleFollower
from queuectld.engine.timing import LeaseTiming
from queuectld.engine.wakeups import Wakeups
from queuectld.fleet.supervisor import Supervisor
from queuectld.home import DB_NAME, LOCK_NAME, HomeLock, StartupError, prepare_home
from queuectld.network.handlers import Handlers
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.handlers.fleet import DRAINING_KEY
from queuectld.network.limits import connection_room
from queuectld.network.listeners import Listeners
from queuectld.network.peers import UnixAccess
from queuectld.network.server import Server
from queuectld.network.tcp import TcpSettings
from queuectld.service import activation, sdnotify
from queuectld.service.manager import ServiceManager
from queuectld.store import Store, StoreUnavailable, open_listener, open_store
from queuectld.store.location import is_postgres, redact
from queuectld.store.runner import StoreRunner
from queuectld.telemetry.counters import Telemetry
from queuectld.telemetry.figures import Figures, serve_metrics

log = logging.getLogger("queuectld")


class Daemon:
    def __init__(
        self,
        home: Path,
        socket_path: Path,
        workers: int | None = None,
        socket_group: int | None = None,
        tcp: TcpSettings | None = None,
        allow_root: bool = False,
        clock: Clock | None = None,
        metrics_address: tuple[str, int] | None = None,
        max_workers: int | None = None,
        store: str | None = None,
        timing: LeaseTiming | None = None,
    ):
        self.home = home
        # The store's location: a PostgreSQL URL (shared), or this home's SQLite file.
        self.store_location = store or str(home / DB_NAME)
        self.timing = timing or LeaseTiming()
        self.max_workers = max_workers
        self.clock = clock or Clock()
        self.socket_path = socket_path
        self.workers_override = workers
        self.socket_group = socket_group
        self.tcp = tcp
        self.allow_root = allow_root
        self.metrics_address = metrics_address
        self.metrics = None  # a PrometheusMetrics once serving
        self.started_at = time.time()
        self.stopping = False
        self.stop_now = False
        self._stop_requested: asyncio.Event | None = None
        self.lock = HomeLock(home / LOCK_NAME)
        self.telemetry = Telemetry()
        # Taken now, before anything can spawn a child that would inherit them.
        try:
            self.passed_sockets = activation.passed_sockets()
        except activation.ActivationError as exc:
            raise StartupError(f"socket activation: {exc}") from None
        activation.forget_environment()
        self.service: ServiceManager | None = None
        self._notify_env = {name: os.environ.get(name) for name in sdnotify.NOTIFY_VARIABLES}
        sdnotify.forget_environment()

    # -- lifecycle -----------------------------------------------------------

    def run(self) -> None:
        prepare_home(self.home)
        self.lock.acquire()
        try:
            asyncio.run(self._main())
        finally:
            self.lock.release()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self._stop_requested = asyncio.Event()
        shown = redact(self.store_location)
        try:
            store = open_store(self.store_location)
        except StoreUnavailable as exc:
            raise StartupError(f"cannot reach the job store {shown}: {exc}") from None
        except Exception as exc:  # its message names the store (without a password)
            raise StartupError(f"cannot open the job store: {exc}") from None
        self.runner = StoreRunner(store, loop)
        self.runner.start()
        try:
            await self._start_serving(loop)
        except BaseException:
            if self.metrics is not None:
                self.metrics.stop()
            self.runner.stop()
            raise
        await self._stop_requested.wait()
        await self._shutdown()

    async def _start_serving(self, loop: asyncio.AbstractEventLoop) -> None:
        stored = await self.runner.call(Store.config_items)
        self.daemon_id = daemon_id(self.home)
        shared = is_postgres(self.store_location)
        self.lease = Lease(
            self.runner,
            self.daemon_id,
            lambda: self.dispatcher.kick(),
            self.timing,
            fleet=lambda: self.supervisor.figures(),
            # Only where another daemon could take this one's runs.
            fencing=_DispatcherFencing(self) if shared else None,
        )
        self.config = Config(stored, self.daemon_id if shared else None)
        self.events = JobEvents()
        self.supervisor = Supervisor(
            loop,
            self._on_worker_message,
            self._on_worker_exit,
            self._on_worker_idle,
            max_workers=self.max_workers,
        )
        settle_in_force(
            self.config,
            self.workers_override,
            self.supervisor.max_workers,
            connection_room,
        )
        self.dispatcher = Dispatcher(
            loop,
            self.runner,
            self.supervisor,
            self.config,
            self.events,
            self.home / "logs",
            telemetry=self.telemetry,
            owner=self.daemon_id,
        )
        self.dispatcher.set_draining(stored.get(DRAINING_KEY) == "1")
        self.output_shipping = None
        if self.runner.store.ships_output:
            self.output_shipping = OutputShipping(loop, self.runner, self.dispatcher.active)
            self.output_shipping.start()
        self.hooks = Hooks(
            self.runner,
            lambda: self.config["on-finish"],
            self.home / "logs" / "hooks.log",
            self.home,
        )
        self.hooks.start(await self.runner.call(Store.queue_settings))
        self.events.listeners.append(self.hooks.job_ended)
        self.scheduler = Scheduler(
            loop,
            self.runner,
            lambda: dict(self.config.values),
            lambda fired: self.dispatcher.kick(),
            self.clock,
        )
        self.figures = Figures(loop, self.runner, self.supervisor)
        self.service = ServiceManager(
            loop,
            sdnotify.Notifier(self._notify_env.get("NOTIFY_SOCKET")),
            self.figures.current,
            lambda: self.runner.call(_store_ping),
            sdnotify.watchdog_interval({k: v for k, v in self._notify_env.items() if v}),
        )
        self.telemetry.on_change(self.service.changed)
        if self.metrics_address is not None:
            self.metrics = serve_metrics(self.metrics_address, self.figures, self.telemetry)
        await self.lease.register()
        await recover_own_runs(self.runner, self.daemon_id)
        self.lease.start()
        self.retention = Retention(
            self.runner, self.config, shared=is_postgres(self.store_location)
        )
        self.rules = RuleFollower(
            loop,
            self.runner,
            self.dispatcher,
            self.config,
            self.hooks,
            DRAINING_KEY,
            settings_changed=self._rules_changed_elsewhere,
        )
        self.wakeups = Wakeups(
            loop,
            lambda: self.dispatcher.kick(),
            lambda report: open_listener(self.store_location, report),
            check_cancels=lambda: self.dispatcher.check_cancel_requests(),
            rules_changed=self.rules.changed,
            rules_version=lambda: self.runner.call(Store.rules_version),
        )
        self.wakeups.start()
        unix_access = UnixAccess(self.socket_group)
        self.server = Server(
            Handlers(self._handler_context()).handle,
            self.config,
            unix_access,
            self.tcp and self.tcp.token,
        )
        self.listeners = Listeners(self.socket_path, self.passed_sockets, unix_access, self.tcp)
        await self.listeners.open(self.server)
        if os.geteuid() == 0:
            log.warning(
                "running as root: jobs submitted by root run as root, jobs of other local "
                "users run as those users%s",
                "; jobs from TCP clients run as root (--allow-root)"
                if self.allow_root
                else "; jobs from TCP clients are refused (no --allow-root)",
                extra={"event": "running_as_root", "allow_root": self.allow_root},
            )
        self.retention.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        target = self.config["workers"]
        self.supervisor.scale(target)
        self.dispatcher.kick()
        self.scheduler.wake()  # fires what came due while no daemon ran, then sleeps
        log.info(
            "queuectld %s started (pid %d) on %s%s with %d worker(s), home %s, store %s",
            __version__,
            os.getpid(),
            self.listeners.socket_path,
            " (socket passed by systemd)" if self.listeners.socket_activated else "",
            target,
            self.home,
            redact(self.store_location),
            extra={
                "event": "daemon_started",
                "pid": os.getpid(),
                "version": __version__,
                "socket": str(self.listeners.socket_path),
                "socket_activated": self.listeners.socket_activated,
                "workers": target,
                "home": str(self.home),
                "store": redact(self.store_location),
            },
        )
        await self.service.ready()

    def _handler_context(self) -> HandlerContext:
        return HandlerContext(
            runner=self.runner,
            dispatcher=self.dispatcher,
            supervisor=self.supervisor,
            scheduler=self.scheduler,
            config=self.config,
            events=self.events,
            telemetry=self.telemetry,
            hooks=self.hooks,
            retention=self.retention,
            home=self.home,
            daemon_id=self.daemon_id,
            store=redact(self.store_location),
            shared_store=is_postgres(self.store_location),
            started_at=self.started_at,
            allow_root=self.allow_root,
            request_stop=self.request_stop,
            is_stopping=lambda: self.stopping,
            listening=self._listening_facts,
        )

    def _listening_facts(self) -> dict:
        address = self.metrics.address if self.metrics is not None else None
        return {
            "socket": str(self.listeners.socket_path),
            "socket_activated": self.listeners.socket_activated,
            "metrics": f"{address[0]}:{address[1]}" if address else None,
            "wakeups": self.wakeups.mode,
        }

    def _rules_changed_elsewhere(self) -> None:
        # Parts that read their settings only when they run: their timers were
        # armed on the old ones (a schedule added elsewhere, a shorter retention).
        self.retention.kick()
        self.scheduler.wake()

    def _on_stop_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        how = "at once" if self.stopping else "gracefully"
        log.info("%s received: stopping %s", name, how, extra={"event": "signal", "signal": name})
        self.request_stop()

    def request_stop(self, now: bool = False) -> None:
        """First call: graceful stop. A second call (or now=True): stop at once."""
        if self.stopping:
            now = True
        self.stopping = True
        if now and not self.stop_now:
            self.stop_now = True
            for worker in self.supervisor.busy_workers():
                self.dispatcher.interrupt_worker(worker)
        if self.service is not None:
            self.service.begin_stop(
                "interrupting running jobs" if self.stop_now else "letting running jobs finish"
            )
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def _shutdown(self) -> None:
        busy = len(self.supervisor.busy_workers())
        how = "interrupting" if self.stop_now else "waiting for"
        log.info(
            "stopping: %s %d running job(s)",
            how,
            busy,
            extra={"event": "daemon_stopping", "now": self.stop_now, "running": busy},
        )
        self.dispatcher.hold()
        if getattr(self, "output_shipping", None) is not None:
            self.output_shipping.stop()
        self.wakeups.stop()
        await self.rules.stop()
        self.retention.stop()
        self.scheduler.close()
        if self.stop_now:
            await self.supervisor.stop_now(self.dispatcher.interrupt_worker)
        else:
            await self.supervisor.stop_gracefully()
        await self.dispatcher.flush()
        try:
            await self.lease.stop()
        except Exception as exc:  # the store may be gone; the next start recovers
            log.warning("could not leave the store: %s", exc)
        await self.hooks.close()
        await self.server.close()
        self.listeners.close()
        if self.metrics is not None:
            self.metrics.stop()
        self.service.close()
        self.runner.stop()
        log.info(
            "queuectld stopped after %.1f s",
            time.time() - self.started_at,
            extra={"event": "daemon_stopped", "uptime": round(time.time() - self.started_at, 3)},
        )

    # -- fleet events ------------------------------------------------------

    def _on_worker_message(self, worker, message: dict) -> None:
        self.dispatcher.on_worker_message(worker, message)

    def _on_worker_exit(self, worker, status: int | None) -> None:
        self.dispatcher.on_worker_exit(worker, status)

    def _on_worker_idle(self) -> None:
        self.dispatcher.kick()
        self.telemetry.changed()


class _DispatcherFencing:
    """Fencing, as the lease asks for it: the dispatcher stops and kills its jobs."""

    def __init__(self, daemon: Daemon):
        self._daemon = daemon

    def fence(self) -> None:
        self._daemon.dispatcher.fence(self._daemon.timing.fence_grace)

    def lift(self) -> None:
        self._daemon.dispatcher.unfence()


def _store_ping(store: Store) -> None:
    """A no-op run by the store thread: proves it still takes calls (for the watchdog)."""
