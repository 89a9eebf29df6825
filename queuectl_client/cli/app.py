"""The click command group of `queuectl`: every command, its options and its help.

Commands are loaded by name: a command's module is imported when that command
runs, or when --help or shell completion lists them all. main.py runs the most
common commands without click at all (quick.py) and everything else here.
"""

from __future__ import annotations

import sys
from importlib import import_module

import click

# Registers the fish completion class before click answers a completion request.
from queuectl_client.cli import completion  # noqa: F401
from queuectl_client.cli.context import COMPLETE_VAR, PROG_NAME, Settings

# Every command, by the module whose `register` adds it: one module per section of
# PROTOCOL.md 8 (tests/test_ops.py), then the live view, the dashboard and shell
# completion.
COMMANDS = {
    "daemon": "session",
    **dict.fromkeys(
        ("enqueue", "add", "list", "show", "logs", "wait", "cancel", "retry", "edit", "purge"),
        "jobs",
    ),
    "dlq": "dlq",
    "status": "fleet",
    "worker": "fleet",
    "queue": "queues",
    "schedule": "schedules",
    "config": "settings",
    "stats": "monitoring",
    "events": "monitoring",
    "top": "top",
    "web": "web",
    "completion": "completion",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        section = COMMANDS.get(cmd_name)
        if section is not None and cmd_name not in self.commands:
            import_module(f"queuectl_client.cli.{section}").register(self)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="QUEUECTL_HOME", help="Data home of the daemon to talk to.")
@click.option("--socket", "socket_path", envvar="QUEUECTL_SOCKET", help="The daemon's socket.")
@click.option(
    "--no-autostart",
    is_flag=True,
    default=False,
    help="Do not start a daemon when none answers (or QUEUECTL_NO_AUTOSTART=1).",
)
@click.option(
    "--connect",
    envvar="QUEUECTL_CONNECT",
    metavar="URL",
    help="A daemon on another host: tcp://HOST:PORT or tls://HOST:PORT.",
)
@click.option(
    "--token-file",
    envvar="QUEUECTL_TOKEN_FILE",
    metavar="FILE",
    help="File holding the token that --connect needs.",
)
@click.option(
    "--tls-ca",
    envvar="QUEUECTL_TLS_CA",
    metavar="FILE",
    help="CA (or the daemon's self-signed certificate) to verify TLS with.",
)
@click.version_option(package_name="queuectl", prog_name="queuectl")
@click.pass_context
def cli(
    ctx: click.Context,
    home: str | None,
    socket_path: str | None,
    no_autostart: bool,
    connect: str | None,
    token_file: str | None,
    tls_ca: str | None,
) -> None:
    """A durable job queue for shell commands.

    \b
    Example:
      queuectl enqueue --command 'make test'
      queuectl worker start --count 4
      queuectl status
    """
    ctx.obj = Settings(
        home=home,
        socket=socket_path,
        autostart=False if no_autostart else None,
        connect=connect,
        token_file=token_file,
        tls_ca=tls_ca,
    )


def load_all() -> None:
    """Import every command now (for a process that cannot import files later)."""
    for name in COMMANDS:
        cli.get_command(click.Context(cli), name)


def run() -> None:
    """Run the command line through click; its errors become one line and an exit code."""
    try:
        cli.main(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("queuectl: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # One line, like every other error; --help has the rest.
        where = exc.ctx.command_path if exc.ctx is not None else "queuectl"
        click.echo(f"queuectl: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
