"""What every command shares: the client it talks through, and how it fails.

Loaded by the commands that run without click (cli/quick.py), so it imports
neither click nor anything heavier than the client.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from queuectl_client.cli.terminal import echo
from queuectl_client.client import Client

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

# A fixed name, so completion works however queuectl was started; the shell sets
# the variable when it asks for completions (completion.py).
PROG_NAME = "queuectl"
COMPLETE_VAR = "_QUEUECTL_COMPLETE"


class Settings:
    """The global options: which daemon to talk to, and how."""

    def __init__(
        self,
        home: str | None,
        socket: str | None,
        autostart: bool | None,
        connect: str | None = None,
        token_file: str | None = None,
        tls_ca: str | None = None,
    ) -> None:
        self.home = home
        self.socket = socket
        self.autostart = autostart
        self.connect = connect
        self.token_file = token_file
        self.tls_ca = tls_ca
        self._client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            self._client = self.client_factory()()
        return self._client

    def client_factory(self, autostart: bool | None = None) -> Callable[[], Client]:
        """Makes new clients to the same daemon, for a command that needs several
        connections at once (`web`); `autostart` overrides the command line's."""
        return lambda: Client(
            home=self.home,
            socket=self.socket,
            autostart=self.autostart if autostart is None else autostart,
            on_autostart=_announce_autostart,
            connect=self.connect,
            token_file=self.token_file,
            tls_ca=self.tls_ca,
        )


def _announce_autostart(pid: int, home: Any) -> None:
    echo(f"queuectl: started queuectld (pid {pid}) for {home}", err=True)


def pass_settings(function: Callable) -> Callable:
    """Pass a command the Settings the group made (click.make_pass_decorator).

    click is imported here, when a command module applies this, so that importing
    this module does not load it.
    """
    import click

    return click.make_pass_decorator(Settings)(function)


def fail(message: str, code: int = EXIT_REFUSED) -> None:
    echo(f"queuectl: {message}", err=True)
    sys.exit(code)


def print_json(value: Any) -> None:
    import json

    echo(json.dumps(value, indent=2, sort_keys=False))
