"""`queuectl web`: the dashboard, served by this process as a client of the daemon."""

from __future__ import annotations

import asyncio
import os
import stat

import click

from queuectl_client.cli.context import EXIT_USAGE, Settings, fail, pass_settings

DEFAULT_LISTEN = "127.0.0.1:8765"
MIN_TOKEN_CHARS = 16


def register(cli: click.Group) -> None:
    cli.add_command(web)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {text!r}", param_hint="--listen")
    return host.strip("[]") or "127.0.0.1", int(port)


def read_web_token(path: str) -> str:
    """The dashboard's token: not readable by everyone, and long enough to guess at
    no faster than the login's delay allows."""
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        fail(f"cannot read token file {path}: {exc.strerror}", EXIT_USAGE)
    if mode & stat.S_IROTH:
        fail(f"token file {path} is readable by everyone; chmod o-r it", EXIT_USAGE)
    if len(token) < MIN_TOKEN_CHARS:
        fail(f"token file {path} holds fewer than {MIN_TOKEN_CHARS} characters", EXIT_USAGE)
    return token


@click.command()
@click.option(
    "--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT",
    help="Where to serve; a non-loopback address needs --token-file. Port 0 picks one.",
)  # fmt: skip
@click.option("--read-only", is_flag=True, help="Show everything, change nothing.")
@click.option(
    "--token-file", "web_token_file", envvar="QUEUECTL_WEB_TOKEN_FILE", metavar="FILE",
    help="A token (16+ characters) visitors log in with once (or QUEUECTL_WEB_TOKEN_FILE).",
)  # fmt: skip
@click.option(
    "--interval", type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
    help="Seconds between the counts the daemon pushes to open pages.",
)  # fmt: skip
@pass_settings
def web(
    settings: Settings, listen: str, read_only: bool, web_token_file: str | None, interval: float
) -> None:
    """Serve the dashboard in the browser: queues, jobs, output, the DLQ, schedules.

    A client of the daemon like every other command (--home, --socket, --connect
    choose which). Live pages follow the daemon's `watch` stream. Stops on
    Ctrl-C or SIGTERM.

    \b
    Examples:
      queuectl web
      queuectl web --read-only --listen 0.0.0.0:8765 --token-file ~/.config/queuectl/web-token
    """
    try:
        from queuectl_client.web.app import make_app, serve
        from queuectl_client.web.security import Guard, is_loopback
    except ImportError as exc:
        fail(
            f"queuectl web needs the web extra: pip install 'queuectl[web]' "
            f"({exc.name} is missing)",
            EXIT_USAGE,
        )
    host, port = parse_listen(listen)
    token = read_web_token(web_token_file) if web_token_file else None
    loopback = is_loopback(host)
    if not loopback and token is None:
        fail(
            f"refusing to serve on {host}, which is not loopback, without --token-file", EXIT_USAGE
        )
    settings.client().connect()  # a daemon to talk to, started if need be, before serving
    settings.client().close()
    # Started once, at most: a dashboard must not bring back a daemon someone stopped.
    clients = settings.client_factory(autostart=False)
    app = make_app(clients, Guard(token, read_only, loopback), interval)
    asyncio.run(
        serve(app, host, port, lambda url: click.echo(f"queuectl web: serving {url}", err=False))
    )
