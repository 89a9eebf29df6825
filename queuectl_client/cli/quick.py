"""`queuectl status` and `queuectl enqueue --command CMD`, run without click.

Importing click costs about as much as everything else these commands do
(docs/BENCHMARKS.md, CLI start-up), and they are the ones typed in loops. Only a
command line in the plain forms below is run here, through the same functions
as the click commands; anything else (help, another option, a value that looks
like an option, a completion request) returns False, and click runs it.

    [GLOBAL...] status [--json]
    [GLOBAL...] enqueue (-c CMD | --command CMD | --command=CMD) [--json]

GLOBAL is one of the group's options, each at most once: --home, --socket,
--connect, --token-file, --tls-ca (VALUE or =VALUE) and --no-autostart.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable

from queuectl_client.cli.context import COMPLETE_VAR, Settings
from queuectl_client.cli.terminal import echo

GLOBAL_VALUES = {
    "--home": "home",
    "--socket": "socket",
    "--connect": "connect",
    "--token-file": "token_file",
    "--tls-ca": "tls_ca",
}
GLOBAL_FLAGS = {"--no-autostart": "no_autostart"}


def run(argv: list[str]) -> bool:
    """Run `argv` here and return True, or return False when click must run it."""
    command = command_for(argv)
    if command is None:
        return False
    _as_click_would(command)
    return True


def command_for(argv: list[str]) -> Callable[[], None] | None:
    """The command `argv` asks for, ready to run; None when it is not one of the
    forms taken here."""
    if os.environ.get(COMPLETE_VAR):
        return None
    found = _parse_globals(argv)
    if found is None:
        return None
    options, rest = found
    command = _status(rest) if rest[:1] == ["status"] else _enqueue(rest)
    if command is None:
        return None
    settings = Settings(
        home=options.get("home"),
        socket=options.get("socket"),
        autostart=False if options.get("no_autostart") else None,
        connect=options.get("connect"),
        token_file=options.get("token_file"),
        tls_ca=options.get("tls_ca"),
    )
    return lambda: command(settings)


def _plain(value: str) -> bool:
    """A value click would read the same way whatever follows it."""
    return bool(value) and not value.startswith("-")


def _parse_globals(argv: list[str]) -> tuple[dict[str, str | bool], list[str]] | None:
    options: dict[str, str | bool] = {}
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        name, equals, value = argv[index].partition("=")
        key = GLOBAL_VALUES.get(name) or GLOBAL_FLAGS.get(name)
        if key is None or key in options:
            return None
        if name in GLOBAL_FLAGS:
            if equals:
                return None
            options[key] = True
            index += 1
            continue
        if not equals:
            if index + 1 == len(argv):
                return None
            value = argv[index + 1]
            index += 1
        if not _plain(value):
            return None
        options[key] = value
        index += 1
    return options, argv[index:]


def _status(rest: list[str]) -> Callable[[Settings], None] | None:
    if rest[1:] not in ([], ["--json"]):
        return None
    as_json = len(rest) == 2

    def status(settings: Settings) -> None:
        from queuectl_client.cli.status_view import show_status

        show_status(settings, as_json)

    return status


def _enqueue(rest: list[str]) -> Callable[[Settings], None] | None:
    if rest[:1] != ["enqueue"]:
        return None
    words = rest[1:]
    as_json = "--json" in words
    if as_json:
        words.remove("--json")
        if "--json" in words:
            return None
    if len(words) == 1 and words[0].startswith("--command="):
        command = words[0].removeprefix("--command=")
    elif len(words) == 2 and words[0] in ("-c", "--command"):
        command = words[1]
    else:
        return None
    if not _plain(command):
        return None

    def enqueue(settings: Settings) -> None:
        from queuectl_client.cli.jobs.submit import submit

        # What `enqueue --command` sends with no job option given: the command alone.
        submit(settings.client(), [{"command": command}], None, as_json)

    return enqueue


def _as_click_would(command: Callable[[], None]) -> None:
    """Ctrl-C and a closed pipe end the command as click's main() ends them."""
    try:
        command()
    except (EOFError, KeyboardInterrupt):
        echo(err=True)
        echo("queuectl: aborted", err=True)
        sys.exit(130)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        from click.utils import PacifyFlushWrapper

        sys.stdout = PacifyFlushWrapper(sys.stdout)
        sys.stderr = PacifyFlushWrapper(sys.stderr)
        sys.exit(1)
