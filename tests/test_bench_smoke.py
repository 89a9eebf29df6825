"""The benchmark suite still runs: `python -m bench all --smoke` exits 0 and prints its tables.

It checks that the suite works, never the timings (those are for a person to
read in docs/BENCHMARKS.md, on a quiet machine).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_smoke_runs_every_scenario_and_prints_its_tables():
    result = subprocess.run(
        [sys.executable, "-m", "bench", "all", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "queuectl benchmarks (smoke mode" in out
    for heading in ("machine", "scenario", "target"):
        assert heading in out
    for scenario in ("1 spawn floor", "4 end to end", "6 scale", "9 peers"):
        assert scenario in out
    assert "failed" not in out
