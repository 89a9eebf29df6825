"""`queuectld`: run the daemon in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys

from protocol.paths import data_home, socket_path
from queuectld import __version__


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="queuectld",
        description="The queuectl daemon: owns the job store and runs the worker fleet.",
        epilog="Example: queuectld --home /var/lib/queuectl --workers 4",
    )
    parser.add_argument(
        "--home", help="data home (default: $QUEUECTL_HOME or $XDG_STATE_HOME/queuectl)"
    )
    parser.add_argument(
        "--socket", help="Unix socket path (default: HOME/queuectld.sock, or $QUEUECTL_SOCKET)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="start with this many workers instead of the stored target",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
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
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from queuectld.daemon import Daemon, StartupError
    from queuectld.schedules import Clock

    home = data_home(args.home)
    try:
        clock = Clock.parse(args.clock)
    except ValueError as exc:
        print(f"queuectld: --clock: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.workers is not None and args.workers < 0:
        print("queuectld: --workers must be 0 or more", file=sys.stderr)
        sys.exit(2)
    try:
        Daemon(
            home,
            socket_path(home, args.socket),
            workers=args.workers,
            socket_group=_group_id(args.socket_group),
            tcp=_tcp(args),
            allow_root=args.allow_root,
            clock=clock,
        ).run()
    except StartupError as exc:
        print(f"queuectld: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def _group_id(name: str | None) -> int | None:
    if name is None:
        return None
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        print(f"queuectld: --socket-group: no group named {name!r}", file=sys.stderr)
        sys.exit(2)


def _tcp(args: argparse.Namespace):
    from queuectld.tcp import ListenError, tcp_settings

    if args.listen is None:
        if args.token_file or args.tls_cert or args.tls_key:
            print("queuectld: --token-file and --tls-* need --listen", file=sys.stderr)
            sys.exit(2)
        return None
    try:
        return tcp_settings(args.listen, args.token_file, args.tls_cert, args.tls_key)
    except ListenError as exc:
        print(f"queuectld: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
