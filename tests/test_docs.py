"""The tables the docs show are checked against the code they describe, so that
each fact has one source: settings (`queuectld/config.py`), job spec fields and
job states (`protocol/messages.py`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol.messages import JOB_SPEC_FIELDS, JOB_STATES
from queuectld.config import SETTINGS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def table_under(doc: str, heading: str) -> list[list[str]]:
    """The first Markdown table after `heading`: its body rows, cells stripped."""
    lines = (DOCS / doc).read_text().splitlines()
    start = lines.index(heading)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("#") and not rows:
            break  # the next section came before any table
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"no table under {heading!r} in {doc}"
    return rows[2:]  # past the header and the |---| line


def names(rows: list[list[str]]) -> list[str]:
    return [re.fullmatch(r"`([^`]+)`", row[0]).group(1) for row in rows]


EMPTY = ("(empty)", "`\"\"`")  # how the tables show an empty default


@pytest.mark.parametrize(
    "doc, heading, default_column",
    [("operating.md", "## Configuration", 1), ("PROTOCOL.md", "### 7.1 Settings", 2)],
)
def test_settings_tables_list_every_setting_with_its_default(doc, heading, default_column):
    rows = table_under(doc, heading)
    assert names(rows) == list(SETTINGS)
    for row in rows:
        key = names([row])[0]
        default = SETTINGS[key].default
        shown = row[default_column]
        if default == "":
            assert shown in EMPTY, key
        else:
            assert shown in (str(default), f"{default:g}"), key


@pytest.mark.parametrize(
    "doc, heading", [("guide.md", "## Job spec"), ("PROTOCOL.md", "### 6.1 Job spec")]
)
def test_job_spec_tables_list_every_field(doc, heading):
    assert sorted(names(table_under(doc, heading))) == sorted(JOB_SPEC_FIELDS)


def test_the_state_table_lists_every_state():
    assert sorted(names(table_under("PROTOCOL.md", "### 6.3 States"))) == sorted(JOB_STATES)
