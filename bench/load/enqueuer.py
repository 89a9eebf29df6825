"""One enqueuing client: COUNT jobs, one job per request, through the Client library.

Usage: python -m bench.load.enqueuer HOME COUNT START_AT
Connects first, waits for the wall clock to reach START_AT (so that many
enqueuers begin together), then prints "START END".
"""

from __future__ import annotations

import sys
import time

from queuectl_client.client import Client


def main() -> None:
    home, count, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with Client(home=home, autostart=False) as client:
        time.sleep(max(0.0, start_at - time.time()))
        started = time.time()
        for _ in range(count):
            client.enqueue({"command": "true"})
        print(f"{started} {time.time()}")


if __name__ == "__main__":
    main()
