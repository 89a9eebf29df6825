"""Shell completion (bash, zsh, fish) through click, with job ids from the daemon.

`queuectl completion SHELL` prints the script to load; the shell then runs
queuectl with _QUEUECTL_COMPLETE set, and click answers with the choices:
commands, options, states (from click.Choice) and job ids, asked of the
running daemon by prefix. Completion never starts a daemon and gives up on
ids after a second rather than hang a shell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click
from click.shell_completion import CompletionItem, FishComplete, add_completion_class

from queuectl_client.cli.context import COMPLETE_VAR, PROG_NAME

SHELLS = ("bash", "zsh", "fish")
ID_LIMIT = 200


def register(cli: click.Group) -> None:
    cli.add_command(completion)


# click's own fish script (8.4) is written in a Python string where "\n" and "\t"
# became a real newline and tab: `string split` loses its separator and the
# description is echoed as a second word. This one speaks a one-line
# "type<TAB>value<TAB>help" format and keeps fish's escapes as escapes.
_FISH_SOURCE = r"""function %(complete_func)s;
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \
COMP_CWORD=(commandline -t) %(prog_name)s);
    for completion in $response;
        set -l metadata (string split -m 2 \t -- $completion);
        if test "$metadata[1]" = dir;
            __fish_complete_directories $metadata[2];
        else if test "$metadata[1]" = file;
            __fish_complete_path $metadata[2];
        else if test "$metadata[1]" = plain;
            if test "$metadata[3]" != _;
                printf '%%s\t%%s\n' $metadata[2] $metadata[3];
            else;
                printf '%%s\n' $metadata[2];
            end;
        end;
    end;
end;

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)";
"""


class QueuectlFishComplete(FishComplete):
    source_template = _FISH_SOURCE

    def format_completion(self, item: CompletionItem) -> str:
        def flat(text: str) -> str:
            return text.replace("\n", " ").replace("\t", " ")

        return f"{item.type}\t{flat(item.value)}\t{flat(item.help or '_')}"


add_completion_class(QueuectlFishComplete, "fish")


def complete_job_ids(
    states: Sequence[str] | None = None,
) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """A shell_complete callback offering the ids of jobs (in these states)."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        ids = _ask_daemon(
            ctx,
            lambda client: client.complete_ids(
                incomplete, list(states) if states else None, ID_LIMIT
            ),
        )
        typed = set(ctx.params.get(param.name) or ()) if param.nargs == -1 else set()
        return [job_id for job_id in ids or [] if job_id not in typed]

    return complete


def complete_setting_keys(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """Setting names, from the daemon (which knows the settings of its version)."""
    items = _ask_daemon(ctx, lambda client: client.config_list())
    return [key for key in items or {} if key.startswith(incomplete)]


def _ask_daemon(ctx: click.Context, question: Callable):
    from queuectl_client.client import Client

    root = ctx.find_root().params
    try:
        with Client(
            home=root.get("home"),
            socket=root.get("socket_path"),
            autostart=False,
            connect_timeout=1.0,
        ) as client:
            client._sock.settimeout(1.0)
            return question(client)
    except Exception:
        return None  # no daemon, or a slow one: complete nothing rather than fail


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    Completes commands, options, job states and job ids (asked of the daemon).

    \b
    Examples:
      eval "$(queuectl completion bash)"        # in ~/.bashrc
      eval "$(queuectl completion zsh)"         # in ~/.zshrc, after compinit
      queuectl completion fish > ~/.config/fish/completions/queuectl.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the choice only allows shells click knows
    root = ctx.find_root().command
    click.echo(cls(root, {}, PROG_NAME, COMPLETE_VAR).source())
