"""What every command shares: the client it talks through, and how it fails."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from queuectl_client.client import Client

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


@dataclass
class Settings:
    home: str | None
    socket: str | None
    autostart: bool | None
    connect: str | None = None
    token_file: str | None = None
    tls_ca: str | None = None
    _client: Client | None = None

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
    click.echo(f"queuectl: started queuectld (pid {pid}) for {home}", err=True)


pass_settings = click.make_pass_decorator(Settings)


def fail(message: str, code: int = EXIT_REFUSED) -> None:
    click.echo(f"queuectl: {message}", err=True)
    sys.exit(code)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))
