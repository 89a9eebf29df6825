"""One op registry, in the sections of docs/PROTOCOL.md 8.

protocol/ops.py groups the ops by section; the daemon has one handler module per
section and the CLI one command module per section, each named like it; the spec
describes each op under its section. These tests hold the four together, so an op
added in one place and forgotten in another fails here. No daemon is started.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from protocol.ops import OPS, SECTIONS
from queuectld.network import handlers

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "PROTOCOL.md"
CALLS = ROOT / "queuectl_client" / "calls.py"

# The title of each subsection of PROTOCOL.md 8, by section name.
TITLES = {
    "session": "The session",
    "jobs": "Jobs",
    "dlq": "The dead letter queue",
    "fleet": "The fleet",
    "queues": "Queues",
    "schedules": "Schedules",
    "settings": "Settings",
    "monitoring": "Monitoring",
}


def _spec_sections() -> dict[str, list[str]]:
    """Subsection title of PROTOCOL.md 8 -> the ops its `#### ` headings name, in order."""
    text = PROTOCOL.read_text()
    ops_part = text[text.index("\n## 8. Ops") : text.index("\n## 9.")]
    sections: dict[str, list[str]] = {}
    current = None
    for line in ops_part.splitlines():
        if match := re.match(r"### 8\.\d+ (.+)", line):
            current = sections.setdefault(match.group(1).strip(), [])
        elif line.startswith("#### ") and current is not None:
            current.extend(re.findall(r"`(\w+)`", line))
    return sections


def test_the_spec_has_one_subsection_per_section_in_the_same_order() -> None:
    assert list(_spec_sections()) == [TITLES[name] for name in SECTIONS]


@pytest.mark.parametrize("name", list(SECTIONS))
def test_each_section_of_the_spec_describes_its_ops_in_order(name: str) -> None:
    assert _spec_sections()[TITLES[name]] == list(SECTIONS[name])


def test_the_spec_overview_table_lists_every_op() -> None:
    text = PROTOCOL.read_text()
    table = text[text.index("| op | what it does |") : text.index("### 8.1")]
    assert sorted(set(re.findall(r"\[`(\w+)`", table) + re.findall(r", `(\w+)`", table))) == (
        sorted(OPS)
    )


@pytest.mark.parametrize("name", list(SECTIONS))
def test_each_section_has_a_handler_module_of_its_name(name: str) -> None:
    module = importlib.import_module(f"queuectld.network.handlers.{name}")
    assert sorted(module.HANDLERS) == sorted(SECTIONS[name])
    assert handlers.SECTIONS[name] is module.HANDLERS


def test_the_handler_table_is_exactly_the_ops() -> None:
    assert list(handlers.SECTIONS) == list(SECTIONS)
    assert sorted(handlers.TABLE) == sorted(OPS)


@pytest.mark.parametrize("name", list(SECTIONS))
def test_each_section_has_a_cli_module_of_its_name(name: str) -> None:
    module = importlib.import_module(f"queuectl_client.cli.{name}")
    assert callable(module.register)


def test_the_client_library_sends_every_op() -> None:
    sent = set(re.findall(r'self\.(?:call|_pages)\(\s*"(\w+)"', CALLS.read_text()))
    assert sent == set(OPS)
