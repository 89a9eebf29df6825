"""`status` and `enqueue --command` without click (cli/quick.py): the same answers as
through click, for exactly the command lines it takes, and no click loaded."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import click
import pytest

from queuectl_client.cli import app, quick, terminal
from tests.conftest import ROOT

TAKEN = [
    ["status"],
    ["status", "--json"],
    ["--home", "/h", "--no-autostart", "status"],
    ["--home=/h", "--socket", "/s", "--connect", "tcp://x:1", "status"],
    ["--token-file", "/t", "--tls-ca", "/c", "status", "--json"],
    ["enqueue", "-c", "true"],
    ["enqueue", "--command", "make test"],
    ["enqueue", "--command=echo hi"],
    ["enqueue", "--json", "-c", "true"],
    ["enqueue", "-c", "true", "--json"],
    ["--home", "/h", "enqueue", "-c", "true"],
]

LEFT_TO_CLICK = [
    [],
    ["--help"],
    ["-h"],
    ["--version"],
    ["status", "--help"],
    ["status", "--watch"],
    ["status", "--json", "--json"],
    ["status", "extra"],
    ["stats"],
    ["--home", "status"],  # `status` is the value of --home, and no command follows
    ["--home", "/a", "--home", "/b", "status"],
    ["--home=", "status"],
    ["--home", "-x", "status"],
    ["--no-autostart=1", "status"],
    ["--no-autostart", "--no-autostart", "status"],
    ["--unknown", "status"],
    ["enqueue"],
    ["enqueue", "-c"],
    ["enqueue", "-c", "-x"],
    ["enqueue", "-c", ""],
    ["enqueue", "--command="],
    ["enqueue", "-c", "--json"],
    ["enqueue", "-ctrue"],
    ["enqueue", "-c", "true", "--priority", "3"],
    ["enqueue", "-c", "true", "--json", "--json"],
    ["enqueue", "-c", "a", "-c", "b"],
    ["enqueue", "--", "echo", "hi"],
    ["enqueue", '{"command": "true"}'],
    ["add", "--", "true"],
]


@pytest.mark.parametrize("argv", TAKEN, ids=" ".join)
def test_the_plain_forms_run_without_click(argv):
    assert quick.command_for(argv) is not None


@pytest.mark.parametrize("argv", LEFT_TO_CLICK, ids=" ".join)
def test_anything_else_is_left_to_click(argv):
    assert quick.command_for(argv) is None


def test_a_completion_request_is_left_to_click(monkeypatch):
    monkeypatch.setenv("_QUEUECTL_COMPLETE", "bash_complete")
    assert quick.command_for(["status"]) is None


@pytest.mark.parametrize("colour", [*terminal.STATE_COLOURS.values(), None])
@pytest.mark.parametrize("bold", [False, True])
def test_colours_are_the_codes_click_writes(colour, bold):
    if colour is None and not bold:
        return
    assert terminal.paint("x", colour, True, bold=bold) == click.style(
        "x", fg=colour, bold=bold or None
    )


def _normalized(text: str) -> str:
    text = re.sub(r"\b[0-9a-f]{12}\b", "ID", text)  # generated job ids
    return re.sub(r'up \w+|"uptime": [\d.]+', "UPTIME", text)


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "--json"],
        ["enqueue", "-c", "true"],
        ["enqueue", "--command=true", "--json"],
    ],
    ids=" ".join,
)
def test_both_ways_print_the_same(daemon, monkeypatch, capsys, argv):
    for name, value in daemon.env().items():
        monkeypatch.setenv(name, value)
    argv = ["--home", str(daemon.home), *argv]
    assert quick.run(argv)
    quick_out, quick_err = capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["queuectl", *argv])
    app.run()
    click_out, click_err = capsys.readouterr()
    assert quick_out and _normalized(quick_out) == _normalized(click_out)
    assert _normalized(quick_err) == _normalized(click_err)


def test_neither_command_loads_click(daemon):
    probe = (
        "import sys\n"
        "from queuectl_client.cli.main import main\n"
        "for argv in (['status'], ['status', '--json'], ['enqueue', '-c', 'true']):\n"
        "    sys.argv = ['queuectl', *argv]\n"
        "    main()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'click'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=daemon.env()
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_a_stream_set_up_for_ascii_gets_what_click_writes(tmp_path):
    # --no-autostart twice means the same to click, and is not a form quick.py takes.
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "PYTHONPATH": str(ROOT)}
    home = str(tmp_path / "hé")
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "queuectl_client.cli.main", "--home", home, *flags, "status"],
            capture_output=True,
            env=env,
        )
        for flags in (["--no-autostart"], ["--no-autostart", "--no-autostart"])
    ]
    assert outputs[0].returncode == outputs[1].returncode == 3
    assert outputs[0].stderr == outputs[1].stderr
    assert "hé".encode() in outputs[0].stderr


@pytest.mark.parametrize("module", sorted(set(app.COMMANDS.values())))
def test_the_lazy_group_knows_every_command_of_each_module(module):
    # A command a module registers but COMMANDS does not name would never be found.
    from importlib import import_module

    group = click.Group()
    import_module(f"queuectl_client.cli.{module}").register(group)
    assert sorted(group.commands) == sorted(n for n, m in app.COMMANDS.items() if m == module)
