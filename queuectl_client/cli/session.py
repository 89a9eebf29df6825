"""The session with the daemon (PROTOCOL.md 8.1): `queuectl daemon start|stop|status`."""

from __future__ import annotations

import os
import time

import click

from queuectl_client.cli.context import (
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Settings,
    fail,
    pass_settings,
    print_json,
)
from queuectl_client.cli.format import duration
from queuectl_client.client import Client, DaemonUnreachable


def register(cli: click.Group) -> None:
    cli.add_command(daemon)


@click.group()
def daemon() -> None:
    """Start, stop or query the daemon of this data home."""


def _probe(settings: Settings, personal: bool = False) -> Client | None:
    """A connected client, or None; `personal` never falls back to the system daemon."""
    client = Client(
        home=settings.home,
        socket=settings.socket,
        autostart=False,
        connect=settings.connect,
        token_file=settings.token_file,
        tls_ca=settings.tls_ca,
    )
    if personal:
        client.may_use_system_socket = False
    try:
        client.connect()
        return client
    except DaemonUnreachable:
        return None


@daemon.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def start(settings: Settings, as_json: bool) -> None:
    """Start a daemon for your data home in the background (if it is not running).

    A system daemon (systemd) is started by systemctl, not by this command.

    \b
    Example:
      queuectl daemon start
    """
    if settings.connect:
        fail("daemon start starts a daemon on this machine; drop --connect", EXIT_USAGE)
    running = _probe(settings, personal=True)
    if running is not None:
        pid = running.hello()["pid"]
        if as_json:
            print_json({"started": False, "pid": pid, "home": str(running.home)})
        else:
            click.echo(f"queuectld already running (pid {pid})")
        return
    from queuectl_client.autostart import start_daemon

    client = Client(home=settings.home, socket=settings.socket)
    pid = start_daemon(client.home, client.socket_path)
    started = pid is not None
    if not started:  # another client's daemon came up at the same moment
        with client:
            pid = client.hello()["pid"]
    if as_json:
        print_json({"started": started, "pid": pid, "home": str(client.home)})
    elif started:
        click.echo(f"queuectld started (pid {pid}) for {client.home}")
    else:
        click.echo(f"queuectld already running (pid {pid})")


@daemon.command()
@click.option("--now", is_flag=True, help="Interrupt running jobs (requeued) instead of waiting.")
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=None, help="Give up waiting after S seconds."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def stop(settings: Settings, now: bool, timeout: float | None, as_json: bool) -> None:
    """Stop the daemon: running jobs finish first unless --now.

    \b
    Example:
      queuectl daemon stop
    """
    client = _probe(settings)
    if client is None:
        if as_json:
            print_json({"stopped": False, "running": False})
        else:
            click.echo("queuectld is not running")
        return
    pid = client.shutdown(now=now)["pid"]
    client.close()
    deadline = None if timeout is None else time.monotonic() + timeout
    # A remote daemon's pid means nothing here: it is gone when it stops answering.
    still_running = (
        (lambda: _probe(settings) is not None) if settings.connect else (lambda: _alive(pid))
    )
    while still_running():
        if deadline is not None and time.monotonic() > deadline:
            fail(f"queuectld (pid {pid}) is still stopping after {timeout:g} s")
        time.sleep(0.05)
    if as_json:
        print_json({"stopped": True, "pid": pid})
    else:
        click.echo(f"queuectld (pid {pid}) stopped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@daemon.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def daemon_status(settings: Settings, as_json: bool) -> None:
    """Say whether the daemon runs; exit 3 when it does not.

    \b
    Example:
      queuectl daemon status
    """
    client = _probe(settings)
    if client is None:
        if as_json:
            print_json({"running": False})
        else:
            click.echo("queuectld is not running")
        raise SystemExit(EXIT_UNREACHABLE)
    info = client.status()["daemon"]
    if as_json:
        print_json({"running": True, **info})
    else:
        click.echo(
            f"queuectld running: pid {info['pid']}, version {info['version']}, "
            f"up {duration(info['uptime'])}"
        )
