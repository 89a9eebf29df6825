"""One spawn-floor process: start `/bin/sh -c true` COUNT times, one after another.

Usage: python -m bench.load.spawner COUNT START_AT
Waits until the wall clock reaches START_AT (so that all spawners begin
together, after their own interpreter start-up), then prints "START END".
"""

from __future__ import annotations

import subprocess
import sys
import time


def main() -> None:
    count, start_at = int(sys.argv[1]), float(sys.argv[2])
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    for _ in range(count):
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
    print(f"{started} {time.time()}")


if __name__ == "__main__":
    main()
