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
import socket
import time
from pathlib import Path

from protocol.messages import JOB_STATES
from queuectld import __version__
from queuectld.config import Config
from queuectld.engine.dispatcher import Dispatcher
from queuectld.engine.events import JobEvents
from queuectld.engine.hooks import Hooks
from queuectld.engine.lease import Lease, daemon_id
from queuectld.engine.recovery import recover_own_runs
from queuectld.engine.retention import Retention
from queuectld.engine.schedules import Clock, Scheduler
from queuectld.fleet.supervisor import Supervisor
from queuectld.home import DB_NAME, LOCK_NAME, HomeLock, StartupError, prepare_home
from queuectld.network.handlers import Handlers
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.handlers.fleet import DRAINING_KEY
from queuectld.network.limits import connection_room
from queuectld.network.peers import UnixAccess
from queuectld.network.server import Server
from queuectld.network.tcp import TcpSettings
from queuectld.service import activation, sdnotify
from queuectld.service.manager import ServiceManager
from queuectld.store import Store, open_store
from queuectld.store.runner import StoreRunner
from queuectld.telemetry.counters import Telemetry

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
    ):
        self.home = home
        self.max_workers = max_workers
        self.clock = clock or Clock()
        self.socket_path = socket_path
        self.workers_override = workers
        self.socket_group = socket_group
        self.tcp = tcp
        self.allow_root = allow_root
        self.metrics_address = metrics_address
        self.metrics = None  # a PrometheusMetrics once serving
        self.socket_activated = False
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
        try:
            store = open_store(str(self.home / DB_NAME))
        except Exception as exc:
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
        self.lease = Lease(self.runner, self.daemon_id, lambda: self.dispatcher.kick())
        self.config = Config(stored)
        self.events = JobEvents()
        self.supervisor = Supervisor(
            loop,
            self._on_worker_message,
            self._on_worker_exit,
            self._on_worker_idle,
            max_workers=self.max_workers,
        )
        self._limits_in_force()
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
        self.service = ServiceManager(
            loop,
            sdnotify.Notifier(self._notify_env.get("NOTIFY_SOCKET")),
            self.current_figures,
            lambda: self.runner.call(_store_ping),
            sdnotify.watchdog_interval({k: v for k, v in self._notify_env.items() if v}),
        )
        self.telemetry.on_change(self.service.changed)
        self._start_metrics()
        await self.lease.register()
        await recover_own_runs(self.runner, self.daemon_id)
        self.lease.start()
        self.retention = Retention(self.runner, self.config)
        self.unix_access = UnixAccess(self.socket_group)
        self.server = Server(
            Handlers(self._handler_context()).handle,
            self.config,
            self.unix_access,
            self.tcp and self.tcp.token,
        )
        try:
            sockets = self._listening_sockets()
            self._open_passed_socket_to_its_group()  # before the first accept
            for sock in sockets:
                await self.server.listen_unix(sock)
            if self.tcp is not None:
                await self._listen_tcp()
        except BaseException:
            await self.server.close()
            raise
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
            "queuectld %s started (pid %d) on %s%s with %d worker(s), home %s",
            __version__,
            os.getpid(),
            self.socket_path,
            " (socket passed by systemd)" if self.socket_activated else "",
            target,
            self.home,
            extra={
                "event": "daemon_started",
                "pid": os.getpid(),
                "version": __version__,
                "socket": str(self.socket_path),
                "socket_activated": self.socket_activated,
                "workers": target,
                "home": str(self.home),
            },
        )
        await self.service.ready()

    def _limits_in_force(self) -> None:
        """`--workers` wins over the stored size, and neither may pass the fleet
        maximum: a size stored before there was one is cut down to it, once per
        start, with a warning, rather than forking workers until memory runs out.
        Connections are cut down likewise to what the open-file limit allows."""
        config, maximum = self.config, self.supervisor.max_workers
        if self.workers_override is not None and self.workers_override != config["workers"]:
            config.override("workers", self.workers_override, "--workers")
        if config["workers"] > maximum:
            log.warning(
                "the stored fleet size %d is more than the fleet maximum %d; starting %d "
                "(queuectld --max-workers raises the maximum)",
                config["workers"],
                maximum,
                maximum,
                extra={"event": "workers_clamped", "stored": config["workers"], "max": maximum},
            )
            config.override("workers", maximum, "the fleet maximum; the stored value is larger")
        room = connection_room(config["workers"])
        if room is not None and config["max-connections"] > room[1]:
            log.warning(
                "max-connections %d is more than the open-file limit (%d) leaves room for; "
                "serving at most %d connections",
                config["max-connections"],
                room[0],
                room[1],
                extra={"event": "connections_clamped", "files": room[0], "max": room[1]},
            )
            config.override("max-connections", room[1], "the open-file limit (ulimit -n)")

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
            started_at=self.started_at,
            allow_root=self.allow_root,
            request_stop=self.request_stop,
            is_stopping=lambda: self.stopping,
            listening=self._listening_facts,
        )

    def _listening_facts(self) -> dict:
        address = self.metrics.address if self.metrics is not None else None
        return {
            "socket": str(self.socket_path),
            "socket_activated": self.socket_activated,
            "metrics": f"{address[0]}:{address[1]}" if address else None,
        }

    def _start_metrics(self) -> None:
        if self.metrics_address is None:
            return
        from queuectld.telemetry.metrics import MetricsUnavailable, PrometheusMetrics

        try:
            metrics = PrometheusMetrics(self._metrics_snapshot)
            host, port = metrics.start(*self.metrics_address)
        except MetricsUnavailable as exc:
            raise StartupError(str(exc)) from None
        self.metrics = metrics
        self.telemetry.metrics = metrics
        log.info(
            "serving Prometheus metrics on http://%s/metrics",
            _host_port(host, port),
            extra={"event": "metrics_listening", "host": host, "port": port},
        )

    async def current_figures(self) -> tuple[dict, dict]:
        """(jobs by state, workers by state): what STATUS= and the gauges show."""
        counts = await self.runner.call(Store.count_by_state)
        jobs = {state: counts.get(state, 0) for state in JOB_STATES}
        workers = self.supervisor.workers.values()
        return jobs, {
            "target": self.supervisor.target,
            "alive": len(self.supervisor.workers),
            "busy": sum(1 for w in workers if w.busy),
            "idle": sum(1 for w in workers if w.idle),
        }

    def _metrics_snapshot(self) -> dict | None:
        """Called from the metrics HTTP thread: ask the event loop, wait briefly."""
        if self.loop.is_closed():
            return None
        future = asyncio.run_coroutine_threadsafe(self.current_figures(), self.loop)
        try:
            jobs, workers = future.result(timeout=5)
        except Exception as exc:
            log.warning("metrics scrape without job gauges: %s", exc or type(exc).__name__)
            future.cancel()
            return None
        return {"jobs": jobs, "workers": workers}

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
        if not self.socket_activated:
            # A passed socket belongs to systemd, which keeps listening on it so that
            # the next client starts us again; only our own socket file is removed.
            try:
                self.socket_path.unlink()
            except OSError:
                pass  # gone already, or the file system turned read-only
        if self.metrics is not None:
            self.metrics.stop()
        self.service.close()
        self.runner.stop()
        log.info(
            "queuectld stopped after %.1f s",
            time.time() - self.started_at,
            extra={"event": "daemon_stopped", "uptime": round(time.time() - self.started_at, 3)},
        )

    # -- start-up steps ------------------------------------------------------

    async def _listen_tcp(self) -> None:
        tcp = self.tcp
        try:
            await self.server.listen_tcp(tcp.host, tcp.port, tcp.ssl_context)
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {tcp.host}:{tcp.port}: {exc.strerror or exc}"
            ) from None
        log.info(
            "listening on %s:%d (%s, token required)",
            tcp.host,
            tcp.port,
            "TLS" if tcp.ssl_context else "plain TCP, loopback only",
        )

    def _listening_sockets(self) -> list[socket.socket]:
        """The socket systemd passed (socket activation), or one we bind ourselves."""
        if self.passed_sockets:
            chosen = activation.control_sockets(self.passed_sockets)
            if not chosen:
                raise StartupError("systemd passed sockets, but none is a Unix stream socket")
            self.socket_activated = True
            path = chosen[0].sock.getsockname()
            if isinstance(path, str) and path:
                self.socket_path = Path(path)
            for passed in chosen:
                log.info(
                    "listening on the socket passed by systemd: %s",
                    passed.describe(),
                    extra={"event": "socket_passed", "fd_name": passed.name},
                )
            return [passed.sock for passed in chosen]
        return [self._bind_socket()]

    def _bind_socket(self) -> socket.socket:
        path = self.socket_path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            # We hold the home lock, so whatever answers here is not a live daemon of
            # this home; but never unlink something that is not a socket.
            if not path.is_socket():
                raise StartupError(f"{path} exists and is not a socket; refusing to replace it")
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
        except OSError as exc:
            sock.close()
            if len(str(path)) > 100:
                raise StartupError(f"cannot bind {path}: path too long for a Unix socket") from None
            raise StartupError(f"cannot bind {path}: {exc.strerror}") from None
        self._restrict_socket(path)
        sock.listen(512)
        sock.setblocking(False)
        return sock

    def _open_passed_socket_to_its_group(self) -> None:
        """A socket systemd passed was opened to a group by its unit (SocketGroup=,
        SocketMode=0660): let that group in, as --socket-group would."""
        if not self.socket_activated or self.socket_group is not None:
            return
        try:
            info = self.socket_path.stat()
        except OSError:
            return
        if info.st_mode & 0o060:
            self.unix_access.socket_group = info.st_gid
            log.info(
                "members of group %d may use the socket passed by systemd",
                info.st_gid,
                extra={"event": "socket_group", "gid": info.st_gid},
            )

    def _restrict_socket(self, path: Path) -> None:
        """0600 by default; with --socket-group, 0660 for that group, and its
        directory made traversable (not listable) by the group alone."""
        if self.socket_group is None:
            os.chmod(path, 0o600)
            return
        os.chown(path, -1, self.socket_group)
        os.chmod(path, 0o660)
        parent = path.parent
        if parent.stat().st_uid == os.geteuid():
            os.chown(parent, -1, self.socket_group)
            os.chmod(parent, 0o710)
        else:
            log.warning("%s is not ours: make sure group members can reach the socket", parent)

    # -- fleet events ------------------------------------------------------

    def _on_worker_message(self, worker, message: dict) -> None:
        self.dispatcher.on_worker_message(worker, message)

    def _on_worker_exit(self, worker, status: int | None) -> None:
        self.dispatcher.on_worker_exit(worker, status)

    def _on_worker_idle(self) -> None:
        self.dispatcher.kick()
        self.telemetry.changed()


def _store_ping(store: Store) -> None:
    """A no-op run by the store thread: proves it still takes calls (for the watchdog)."""


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
