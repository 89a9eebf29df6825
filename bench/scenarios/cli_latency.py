"""8. CLI latency: wall time of `queuectl status` and `queuectl enqueue`, start-up included.

Python's own start-up is shown beside them: it is the part no lazy import can
remove.
"""

from __future__ import annotations

from bench.context import Context
from bench.daemon import BenchDaemon
from bench.procs import PYTHON, queuectl_argv, timed_run
from bench.report import Figure
from bench.stats import median

SCENARIO = "8 CLI latency"


def _interleaved_ms(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median wall time of each command, the commands taking turns so that a change in
    the machine's load hits them all alike."""
    for argv in commands.values():
        timed_run(argv)  # warms the page cache and the bytecode cache
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(timed_run(argv)[0] * 1e3)
    return {name: median(values) for name, values in times.items()}


def run(ctx: Context) -> list[Figure]:
    runs = ctx.profile.cli_runs
    detail = f"median of {runs} runs, wall, the three commands taking turns"
    with BenchDaemon(workers=0) as daemon:
        home = str(daemon.home)
        ms = _interleaved_ms(
            {
                "python": [PYTHON, "-c", "pass"],
                "status": queuectl_argv(home, "status"),
                "enqueue": queuectl_argv(home, "enqueue", "--command", "true"),
            },
            runs,
        )
    labels = {"status": "queuectl status", "enqueue": "queuectl enqueue --command true"}
    figures = [
        Figure(SCENARIO, "python -c pass (interpreter alone)", ms["python"], "ms", detail=detail)
    ]
    for name, label in labels.items():
        figures.append(Figure(SCENARIO, label, ms[name], "ms", key=f"cli.{name}", detail=detail))
    for name, label in labels.items():
        figures.append(
            Figure(
                SCENARIO,
                f"{label}, ratio to python -c pass",
                ms[name] / ms["python"],
                "x",
                key=f"cli.{name}.ratio",
                detail=f"{ms[name] - ms['python']:.2f} ms above the interpreter's own start",
            )
        )
    return figures
