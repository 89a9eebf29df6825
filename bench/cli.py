"""`python -m bench all --quick|--full|--smoke` or `python -m bench SCENARIO...`."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import machine
from bench.context import Context
from bench.procs import compile_sources
from bench.profiles import PROFILES
from bench.report import Figure, figures_table, render
from bench.scenarios import BY_NAME, SCENARIOS
from bench.targets import evaluate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark queuectl against the spawn floor and its peers.",
        epilog="Scenarios: " + ", ".join(s.name for s in SCENARIOS) + ". Example: "
        "python -m bench all --quick; python -m bench e2e latency --full",
    )
    parser.add_argument("scenarios", nargs="+", metavar="all|SCENARIO")
    mode = parser.add_mutually_exclusive_group()
    for name in PROFILES:
        mode.add_argument(
            f"--{name}", dest="mode", action="store_const", const=name, help=f"{name} sizes"
        )
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.set_defaults(mode="quick")
    args = parser.parse_args(argv)
    if args.scenarios == ["all"]:
        args.scenarios = [s.name for s in SCENARIOS]
    unknown = [n for n in args.scenarios if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r} (known: all, {', '.join(BY_NAME)})")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    profile = PROFILES[args.mode]
    scratch = Path(tempfile.mkdtemp(prefix="queuectl-bench-run-"))
    ctx = Context(profile=profile, scratch=scratch)
    compile_sources()
    load_at_start = machine.load_average()
    figures: list[Figure] = []
    failures: list[str] = []
    loads: list[tuple[str, str]] = []  # the machine's load as each scenario began
    started = time.monotonic()
    try:
        for name in args.scenarios:
            scenario = BY_NAME[name]
            print(f"== {scenario.title}", file=sys.stderr, flush=True)
            loads.append((scenario.title, machine.load_average()))
            try:
                figures += scenario.run(ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                traceback.print_exc()
                failures.append(f"{scenario.title}: {exc}")
                figures.append(Figure(scenario.title, "failed", None, "", detail=str(exc)[:200]))
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - started
    load = [("load average at start / end", f"{load_at_start} / {machine.load_average()}")]
    load.append(
        ("load average as each scenario began", ", ".join(f"{t.split()[0]}: {v}" for t, v in loads))
    )
    print_report(args, figures, ctx, elapsed, load)
    if failures:
        print("\nfailed scenarios:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


def print_report(
    args: argparse.Namespace,
    figures: list[Figure],
    ctx: Context,
    elapsed: float,
    load: list[tuple[str, str]],
) -> None:
    md = args.markdown
    command = "python -m bench " + shlex.join(sys.argv[1:])
    print()
    print(f"queuectl benchmarks ({ctx.profile.name} mode, {elapsed:.0f} s): {command}")
    print()
    print(render(("machine", ""), machine.describe() + load, md))
    for note in ctx.profile.notes:
        print(f"\nnote: {note}")
    print()
    print(figures_table(figures, md))
    print()
    print(render(("target", "measured", "verdict"), evaluate(figures, ctx.cores), md))
