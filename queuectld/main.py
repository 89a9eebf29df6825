"""`queuectld`: run the daemon in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from protocol.paths import data_home, socket_path
from queuectld import __version__
from queuectld.engine.timing import HEARTBEAT_SECONDS, LEASE_SECONDS, LeaseTiming
from queuectld.telemetry.logsetup import FORMATS, LEVELS, configure


class _OneLineErrors(argparse.ArgumentParser):
    """Bad flags get one line, like every other error; --help has the rest."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _OneLineErrors(
        prog="queuectld",
        description="The queuectl daemon: owns the job store and runs the worker fleet.",
        epilog=(
            "Example: queuectld --home /var/lib/queuectl --workers 4 "
            "--metrics 127.0.0.1:9464 --log-format json"
        ),
    )
    parser.add_argument(
        "--home", help="data home (default: $QUEUECTL_HOME or $XDG_STATE_HOME/queuectl)"
    )
    parser.add_argument(
        "--socket", help="Unix socket path (default: HOME/queuectld.sock, or $QUEUECTL_SOCKET)"
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        default=os.environ.get("QUEUECTL_STORE") or None,
        help="job store: a PostgreSQL URL (postgresql://USER@HOST/DB, a libpq connection "
        "string) that several daemons may share, or a SQLite file "
        "(default: $QUEUECTL_STORE, or HOME/queuectl.db)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="start with this many workers instead of the stored target",
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        default=None,
        metavar="N",
        help="most workers the fleet may have (default: 8 per CPU core, at least 16)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=LEVELS,
        help="least severe events logged to stderr (default: info)",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=FORMATS,
        help="text lines, or one JSON object per line (default: text)",
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        default=None,
        help="serve Prometheus metrics on http://HOST:PORT/metrics (needs prometheus-client; "
        "port 0 picks a free port; off by default)",
    )
    lease = parser.add_argument_group("lease (daemons sharing a store)")
    lease.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=None,
        metavar="S",
        help=f"renew this daemon's lease every S seconds (default: {HEARTBEAT_SECONDS:g})",
    )
    lease.add_argument(
        "--lease-seconds",
        type=float,
        default=None,
        metavar="S",
        help="a daemon silent for S seconds is presumed dead and its running jobs are "
        f"requeued by another (default: {LEASE_SECONDS:g}; every daemon of a store "
        "should use the same)",
    )
    access = parser.add_argument_group("access")
    access.add_argument(
        "--socket-group",
        metavar="GROUP",
        help="let members of GROUP use the Unix socket (default: only this user and root)",
    )
    access.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="also accept TCP clients here (needs --token-file; TLS unless on loopback)",
    )
    access.add_argument("--token-file", metavar="FILE", help="shared secret TCP clients must send")
    access.add_argument("--tls-cert", metavar="FILE", help="TLS certificate (PEM) for --listen")
    access.add_argument("--tls-key", metavar="FILE", help="TLS private key (PEM) for --listen")
    access.add_argument(
        "--allow-root",
        action="store_true",
        help="when running as root, run jobs of TCP clients as root instead of refusing them",
    )
    parser.add_argument("--version", action="version", version=f"queuectld {__version__}")
    # For tests only: the scheduler's clock starts at ISO-TIME and runs SPEED times as
    # fast as real time, so a test can watch cron firings at chosen minutes.
    parser.add_argument("--clock", metavar="ISO-TIME[,SPEED]", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure(args.log_level, args.log_format)
    from queuectld.daemon import Daemon
    from queuectld.engine.schedules import Clock
    from queuectld.fleet.supervisor import fleet_size_error
    from queuectld.home import StartupError

    home = data_home(args.home)
    try:
        clock = Clock.parse(args.clock)
    except ValueError as exc:
        print(f"queuectld: --clock: {exc}", file=sys.stderr)
        sys.exit(2)
    max_workers = _max_workers(args)
    if args.workers is not None and args.workers < 0:
        _fail(args, "--workers must be 0 or more", 2)
    if args.workers is not None and (error := fleet_size_error(args.workers, max_workers)):
        _fail(args, f"--workers: {error}", 2)
    metrics_address = None
    if args.metrics is not None:
        from queuectld.telemetry.metrics import parse_address

        try:
            metrics_address = parse_address(args.metrics)
        except ValueError as exc:
            _fail(args, f"--metrics: {exc}", 2)
    try:
        timing = LeaseTiming.of(args.heartbeat_seconds, args.lease_seconds)
    except ValueError as exc:
        _fail(args, str(exc), 2)
    try:
        Daemon(
            home,
            socket_path(home, args.socket),
            workers=args.workers,
            socket_group=_group_id(args, args.socket_group),
            tcp=_tcp(args),
            allow_root=args.allow_root,
            clock=clock,
            metrics_address=metrics_address,
            max_workers=max_workers,
            store=args.store,
            timing=timing,
        ).run()
    except StartupError as exc:
        _fail(args, str(exc), 1)
    except KeyboardInterrupt:
        sys.exit(130)


def _max_workers(args: argparse.Namespace) -> int:
    from queuectld.config import WORKERS_CEILING
    from queuectld.fleet.supervisor import default_max_workers

    if args.max_workers is None:
        return default_max_workers()
    if not 1 <= args.max_workers <= WORKERS_CEILING:
        _fail(args, f"--max-workers must be 1 to {WORKERS_CEILING}", 2)
    return args.max_workers


def _fail(args: argparse.Namespace, message: str, code: int) -> None:
    """One line on stderr; in the log's own format, so a JSON log stays all JSON."""
    if args.log_format == "json":
        logging.getLogger("queuectld").error(
            "cannot start: %s", message, extra={"event": "startup_failed"}
        )
    else:
        print(f"queuectld: {message}", file=sys.stderr)
    sys.exit(code)


def _group_id(args: argparse.Namespace, name: str | None) -> int | None:
    if name is None:
        return None
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        _fail(args, f"--socket-group: no group named {name!r}", 2)


def _tcp(args: argparse.Namespace):
    from queuectld.network.tcp import ListenError, tcp_settings

    if args.listen is None:
        if args.token_file or args.tls_cert or args.tls_key:
            _fail(args, "--token-file and --tls-* need --listen", 2)
        return None
    try:
        return tcp_settings(args.listen, args.token_file, args.tls_cert, args.tls_key)
    except ListenError as exc:
        _fail(args, str(exc), 2)


if __name__ == "__main__":
    main()
