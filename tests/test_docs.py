"""The reference tables in the docs say what the code does.

docs/PROTOCOL.md holds the one table of job spec fields (6.1), of job states
(6.3) and of settings (7.1). These tests read those Markdown tables and compare
them, both ways, with protocol/messages.py and queuectld/config.py; they also
check that no other document keeps a copy of them and that links between the
documents lead somewhere. No daemon is started.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol.messages import JOB_SPEC_FIELDS, JOB_STATES, TERMINAL_STATES
from queuectld.config import SETTINGS, scope

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "PROTOCOL.md"


# -- reading Markdown -----------------------------------------------------------


def _prose_lines(text: str) -> list[str]:
    """The lines of a document with fenced code blocks blanked out."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return lines


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [part.strip().replace("\\|", "|") for part in parts]


def _tables(lines: list[str]) -> list[list[dict[str, str]]]:
    """Every table of the lines, each as rows of {header: cell}."""
    tables, i = [], 0
    while i < len(lines):
        if (
            lines[i].lstrip().startswith("|")
            and i + 1 < len(lines)
            and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[i + 1])
        ):
            header = [cell.strip("`").lower() for cell in _cells(lines[i])]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(dict(zip(header, _cells(lines[i]), strict=True)))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


def _section_table(path: Path, heading: str) -> list[dict[str, str]]:
    """The first table under the heading that starts with `heading`."""
    lines = _prose_lines(path.read_text())
    for n, line in enumerate(lines):
        if re.match(r"#+ ", line) and line.lstrip("#").strip().startswith(heading):
            end = next(
                (m for m in range(n + 1, len(lines)) if re.match(r"#+ ", lines[m])), len(lines)
            )
            tables = _tables(lines[n + 1 : end])
            assert tables, f"{path.name}: no table under {heading!r}"
            return tables[0]
    raise AssertionError(f"{path.name}: no heading {heading!r}")


def _code(cell: str) -> str:
    """The text of a cell that is one `code span`."""
    match = re.fullmatch(r"`([^`]*)`", cell)
    assert match, f"expected a `code` cell, got {cell!r}"
    return match.group(1)


# -- settings (PROTOCOL.md 7.1, queuectld/config.py) ---------------------------


def _settings_rows() -> dict[str, dict[str, str]]:
    rows = _section_table(PROTOCOL, "7.1 Settings")
    keys = [_code(row["key"]) for row in rows]
    assert len(keys) == len(set(keys)), f"a setting is listed twice: {keys}"
    return dict(zip(keys, rows, strict=True))


def test_settings_table_lists_every_setting_and_no_other():
    documented = set(_settings_rows())
    assert documented == set(SETTINGS), (
        f"missing from PROTOCOL.md 7.1: {sorted(set(SETTINGS) - documented)}; "
        f"not settings: {sorted(documented - set(SETTINGS))}"
    )


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_setting_scope_matches(key):
    assert _settings_rows()[key]["scope"] == scope(key), f"{key}: scope in PROTOCOL.md 7.1"


TYPES = {"integer": int, "float": float, "string": str}


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_setting_type_and_default_match(key):
    row = _settings_rows()[key]
    default = SETTINGS[key].default
    kind = TYPES.get(row["type"])
    assert kind is not None, f"{key}: unknown type {row['type']!r} in PROTOCOL.md 7.1"
    assert type(default) is kind, f"{key}: documented as {row['type']}, default is {default!r}"
    text = row["default"]
    documented = _code(text) if kind is str else kind(text)
    if kind is str:
        documented = documented.strip('"')
    assert documented == default, f"{key}: PROTOCOL.md says default {text}, config.py {default!r}"
    if kind is int:
        with pytest.raises(ValueError):
            SETTINGS[key].parse("1.5")


def _accepts(key: str, value) -> bool:
    try:
        SETTINGS[key].parse(str(value))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_setting_range_matches(key):
    setting = SETTINGS[key]
    meaning = _settings_rows()[key]["meaning"]
    if isinstance(setting.default, str):
        longest = re.search(r"\(at most (\d+) bytes\)", meaning)
        assert longest, f"{key}: PROTOCOL.md 7.1 gives no length such as (at most 100 bytes)"
        assert int(longest.group(1)) == setting.maximum, f"{key}: another length in config.py"
        return
    between = re.search(r"\((-?[\d.]+) to (-?[\d.]+)[),:]", meaning)
    assert between, f"{key}: PROTOCOL.md 7.1 gives no range such as (0 to 100)"
    step = 1 if isinstance(setting.default, int) else 0.001
    low, high = (float(between.group(1)), float(between.group(2)))
    if step == 1:
        low, high = int(low), int(high)
    assert (low, high) == (setting.minimum, setting.maximum), f"{key}: another range in config.py"
    assert _accepts(key, low), f"{key}: refuses {low}, documented as {low} to {high}"
    assert _accepts(key, high), f"{key}: refuses {high}, documented as {low} to {high}"
    assert not _accepts(key, low - step), f"{key}: accepts below {low}"
    assert not _accepts(key, high + step), f"{key}: accepts above {high}"


# -- job spec (PROTOCOL.md 6.1, protocol/messages.py) ---------------------------

SPEC_TYPES = {
    "string": "str",
    "string (iso 8601)": "str",
    "integer": "int",
    "number": "number",
    "map of string to string": "str_map",
    "array of strings": "str_list",
}


def _spec_rows() -> dict[str, dict[str, str]]:
    rows = _section_table(PROTOCOL, "6.1 Job spec")
    names = [_code(row["field"]) for row in rows]
    assert len(names) == len(set(names)), f"a field is listed twice: {names}"
    return dict(zip(names, rows, strict=True))


def test_job_spec_table_lists_every_field_and_no_other():
    documented = set(_spec_rows())
    assert documented == set(JOB_SPEC_FIELDS), (
        f"missing from PROTOCOL.md 6.1: {sorted(set(JOB_SPEC_FIELDS) - documented)}; "
        f"not job spec fields: {sorted(documented - set(JOB_SPEC_FIELDS))}"
    )


@pytest.mark.parametrize("name", sorted(JOB_SPEC_FIELDS))
def test_job_spec_field_matches(name):
    row = _spec_rows()[name]
    field = JOB_SPEC_FIELDS[name]
    constraints = row["constraints and meaning"]
    assert SPEC_TYPES.get(row["type"].lower()) == field.kind, (
        f"{name}: documented as {row['type']!r}, the protocol checks kind {field.kind!r}"
    )
    assert (row["required"] == "yes") == field.required, f"{name}: required is {field.required}"
    assert constraints.lower().startswith("non-empty") == field.nonempty, (
        f"{name}: nonempty is {field.nonempty}"
    )
    most = re.search(r"at most (\d+) bytes", constraints, re.IGNORECASE)
    assert (int(most.group(1)) if most else None) == field.max_bytes, (
        f"{name}: the protocol allows at most {field.max_bytes} bytes"
    )
    between = re.search(r"\b(\d[\d.e]*) to (\d[\d.e]*)\b", constraints)
    at_least = re.search(r">= (-?[\d.]+)", constraints)
    minimum = float(between.group(1)) if between else float(at_least.group(1)) if at_least else None
    maximum = float(between.group(2)) if between else None
    assert minimum == field.minimum, f"{name}: the protocol's minimum is {field.minimum}"
    assert maximum == field.maximum, f"{name}: the protocol's maximum is {field.maximum}"
    # Defaults taken from settings name the setting and its default.
    for key, value in re.findall(r"setting `([a-z-]+)` \(([^)]+)\)", row["default"]):
        assert key in SETTINGS, f"{name}: default names unknown setting {key!r}"
        assert float(value) == SETTINGS[key].default, f"{name}: {key} defaults to another value"
    for key, value in re.findall(r"`([a-z-]+)` \(setting, default (\d+)\)", constraints):
        assert key in SETTINGS, f"{name}: names unknown setting {key!r}"
        assert int(value) == SETTINGS[key].default, f"{name}: {key} defaults to another value"


# -- job states (PROTOCOL.md 6.3, protocol/messages.py) -------------------------


def test_job_states_table_matches_the_protocol():
    rows = _section_table(PROTOCOL, "6.3 States")
    states = [_code(row["state"]) for row in rows]
    assert len(states) == len(set(states)), f"a state is listed twice: {states}"
    assert set(states) == set(JOB_STATES), (
        f"PROTOCOL.md 6.3 lists {states}, the protocol has {JOB_STATES}"
    )
    terminal = [_code(row["state"]) for row in rows if row["terminal"].startswith("yes")]
    assert set(terminal) == set(TERMINAL_STATES), (
        f"terminal in PROTOCOL.md 6.3: {terminal}; in the protocol: {TERMINAL_STATES}"
    )


# -- one place for each table, and links that lead somewhere --------------------


def _documents() -> list[Path]:
    return sorted([*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md")])


@pytest.mark.parametrize("path", [p for p in _documents() if p != PROTOCOL], ids=lambda p: p.name)
def test_reference_tables_are_not_copied(path):
    """Other documents link to PROTOCOL.md's tables instead of repeating them."""
    for names, what in (
        (set(SETTINGS), "settings (PROTOCOL.md 7.1)"),
        (set(JOB_SPEC_FIELDS), "job spec fields (PROTOCOL.md 6.1)"),
        (set(JOB_STATES), "job states (PROTOCOL.md 6.3)"),
    ):
        for table in _tables(_prose_lines(path.read_text())):
            first = {re.sub(r"`([^`]*)`.*", r"\1", next(iter(row.values()), "")) for row in table}
            assert len(first & names) < 3, f"{path.name} has a table of {what}: link to it"


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    for line in _prose_lines(path.read_text()):
        match = re.match(r"#+ (.*)", line)
        if match:
            slug, n = _slug(match.group(1)), 1
            while slug in anchors:
                slug, n = f"{_slug(match.group(1))}-{n}", n + 1
            anchors.add(slug)
    return anchors


@pytest.mark.parametrize("path", _documents(), ids=lambda p: p.name)
def test_links_between_documents_resolve(path):
    text = "\n".join(_prose_lines(path.read_text()))
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: link to missing {file_part}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{path.name}: no heading for {target}"
