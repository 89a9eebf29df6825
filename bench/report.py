"""Figures and the tables they are printed in (plain text, or Markdown for the docs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Figure:
    scenario: str  # e.g. "4 end to end"
    label: str  # what was measured, e.g. "N=2 workers"
    value: float | None  # None: not measured (see detail)
    unit: str  # jobs/s, ms, MB, x, s, ...
    key: str = ""  # how the targets find it
    detail: str = ""  # the runs behind a median, or why it is missing

    def shown(self) -> str:
        if self.value is None:
            return "-"
        return format_value(self.value, self.unit)


def format_value(value: float, unit: str) -> str:
    if unit == "jobs/s":
        return f"{value:,.0f} jobs/s"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "ms":
        return f"{value:.2f} ms" if abs(value) < 100 else f"{value:,.0f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "us":
        return f"{value:,.0f} us"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "CPU-s/min":
        return f"{value:.3f} CPU-s/min"
    return f"{value:g} {unit}".strip()


def render(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def figures_table(figures: Sequence[Figure], markdown: bool = False) -> str:
    rows = []
    last = None
    for fig in figures:
        scenario = fig.scenario if fig.scenario != last or markdown else ""
        last = fig.scenario
        rows.append((scenario, fig.label, fig.shown(), fig.detail))
    return render(("scenario", "measure", "value", "detail"), rows, markdown)


def runs_detail(values: Sequence[float], unit: str, size: int, what: str) -> str:
    """'5,000 spawns/run; runs: 1,234, 1,250, 1,190' - what a median was taken of."""
    shown = ", ".join(format_value(v, unit).split()[0] for v in values)
    return f"{size:,} {what}/run; runs: {shown}"
