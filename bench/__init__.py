"""The queuectl benchmark suite: `python -m bench all --quick|--full`.

Each scenario starts its own daemon on a fresh temporary data home, measures,
and stops that daemon by the pid it started. Figures are medians of several
runs; `docs/BENCHMARKS.md` holds the results of a full run.
"""

from pathlib import Path

# The source tree this suite belongs to: every process it starts (the daemon,
# its workers, the CLI, load generators) imports queuectl from here, so the
# suite measures this checkout and not some other installed copy.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
