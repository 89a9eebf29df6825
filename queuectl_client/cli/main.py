"""`queuectl`: talk to the queuectld daemon.

Exit codes: 0 success, 1 the daemon refused (not found, invalid job,
conflict, ...), 2 usage error, 3 no daemon reachable.
"""

from __future__ import annotations

import sys

import click

from protocol.errors import ProtocolError
from queuectl_client.cli import (
    completion,
    dlq,
    fleet,
    jobs,
    monitoring,
    queues,
    schedules,
    session,
    settings,
    top,
    web,
)
from queuectl_client.cli.context import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, Settings
from queuectl_client.client import BadArgument, DaemonUnreachable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


# One module per section of PROTOCOL.md 8 (tests/test_ops.py), then the live view,
# the dashboard and shell completion.
for module in (
    session,
    jobs,
    dlq,
    fleet,
    queues,
    schedules,
    settings,
    monitoring,
    top,
    web,
    completion,
):
    module.register(cli)


def main() -> None:
    try:
        # A fixed name, so completion works however queuectl was started.
        cli.main(
            prog_name=completion.PROG_NAME,
            complete_var=completion.COMPLETE_VAR,
            standalone_mode=False,
        )
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
    except ProtocolError as exc:
        click.echo(f"queuectl: {exc.code.value}: {exc.message}", err=True)
        sys.exit(EXIT_REFUSED)
    except DaemonUnreachable as exc:
        click.echo(f"queuectl: {exc}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    except BadArgument as exc:
        click.echo(f"queuectl: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except UnicodeEncodeError:
        # Arguments that are not UTF-8 arrive with surrogate escapes, which no
        # request can carry.
        click.echo("queuectl: an argument is not valid UTF-8", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as exc:
        click.echo(f"queuectl: {exc}", err=True)
        sys.exit(EXIT_REFUSED)


if __name__ == "__main__":
    main()
