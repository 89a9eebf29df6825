"""10. Dashboard: `queuectl web` on a big store, and what open pages cost the daemon.

Render time: the Jobs page (first page, a filtered page and a page deep in the
store through the cursor) and the Job page of a job with output, with
`scale_jobs` pending jobs in the store (a million in the full run), timed as
the wall time of a request to the app served in this process over loopback:
the server's time plus a little HTTP. Daemon CPU: a busy queue (short jobs
enqueued at a steady rate, two workers), the daemon's CPU watched without a
dashboard and then with one `queuectl web` process serving 10 open event
streams; the difference is what the dashboards add.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time

from bench.context import Context
from bench.daemon import BenchDaemon
from bench.procs import child_env
from bench.report import Figure
from bench.stats import median
from queuectl_client.client import Client

SCENARIO = "10 dashboard"
FILL_BATCH = 10_000
DASHBOARDS = 10
LOAD_JOBS_PER_SECOND = 200
LOAD_BATCH = 20


def run(ctx: Context) -> list[Figure]:
    try:
        import aiohttp  # noqa: F401
        import jinja2  # noqa: F401
    except ImportError as exc:
        return [Figure(SCENARIO, "dashboard", None, "", detail=f"web extra missing: {exc.name}")]
    return _render_times(ctx) + _daemon_cpu(ctx)


# -- render time on a big store --------------------------------------------------


def _render_times(ctx: Context) -> list[Figure]:
    p = ctx.profile
    with BenchDaemon(workers=0) as daemon, daemon.client() as client:
        client.enqueue({"id": "probe", "command": "seq 1 5000", "priority": 10})
        client.scale_workers(1)
        client.wait(["probe"], timeout=30)
        client.scale_workers(0)
        started = time.perf_counter()
        for _ in client.enqueue_many(
            ({"command": "true"} for _ in range(p.scale_jobs)), FILL_BATCH
        ):
            pass
        ctx.log(f"filled {p.scale_jobs:,} jobs in {time.perf_counter() - started:.1f} s")
        # The cursor is the store's enqueue sequence: half the fill is a page in the middle.
        middle = p.scale_jobs // 2
        paths = {
            "Jobs, first page": "/jobs",
            "Jobs, pending in default": "/jobs?state=pending&queue=default",
            "Jobs, a page in the middle": f"/jobs?after={middle}",
            "Job with 5,000 lines of output": "/job/probe",
        }
        timings = asyncio.run(_time_pages(daemon.home, paths, max(3, p.scale_probes)))
    at = f"{p.scale_jobs:,} jobs"
    keys = {"Jobs, first page": "web.jobs", "Job with 5,000 lines of output": "web.job"}
    return [
        Figure(SCENARIO, f"{label}, {at}", ms, "ms", key=keys.get(label, ""), detail="median")
        for label, ms in timings.items()
    ]


async def _time_pages(home, paths: dict[str, str], repeats: int) -> dict[str, float]:
    from aiohttp.test_utils import TestClient, TestServer

    from queuectl_client.web.app import make_app
    from queuectl_client.web.security import Guard

    app = make_app(lambda: Client(home=home, autostart=False), Guard())
    timings = {}
    async with TestClient(TestServer(app)) as http:

        async def timed(path: str) -> float:
            started = time.perf_counter()
            response = await http.get(path)
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: HTTP {response.status}")
            return (time.perf_counter() - started) * 1e3

        # One untimed round first: templates compile, and the store's pages, still
        # being written back after the fill, settle.
        for path in paths.values():
            await timed(path)
        for label, path in paths.items():
            timings[label] = median([await timed(path) for _ in range(repeats)])
    return timings


# -- what open dashboards cost the daemon ---------------------------------------


class Load:
    """Short jobs enqueued at a steady rate from a thread, until stopped."""

    def __init__(self, home) -> None:
        self.home = home
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pause = LOAD_BATCH / LOAD_JOBS_PER_SECOND
        with Client(home=self.home, autostart=False) as client:
            while not self.stop.wait(pause):
                client.enqueue(*({"command": "true"} for _ in range(LOAD_BATCH)))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _cpu(proc) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def _watched(proc, seconds: float) -> float:
    """Percent of one core `proc` used over `seconds`."""
    before = _cpu(proc)
    time.sleep(seconds)
    return (_cpu(proc) - before) / seconds * 100


def _daemon_cpu(ctx: Context) -> list[Figure]:
    seconds = max(1.0, ctx.profile.idle_seconds)
    with BenchDaemon(workers=2) as daemon, Load(daemon.home):
        proc = daemon.process()
        time.sleep(1.0)  # the load settles
        without = _watched(proc, seconds)
        web = subprocess.Popen(
            [sys.executable, "-m", "queuectl_client.cli.main", "--home", str(daemon.home),
             "--no-autostart", "web", "--listen", "127.0.0.1:0"],
            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            url = re.search(r"http://\S+", web.stdout.readline()).group(0).rstrip("/")
            streams = _EventStreams(url, DASHBOARDS)
            try:
                time.sleep(1.0)
                with_pages = _watched(proc, seconds)
                import psutil

                web_cpu = _watched(psutil.Process(web.pid), seconds)
                frames = streams.frames
            finally:
                streams.close()
        finally:
            web.terminate()
            web.wait(10)
    added = max(0.0, with_pages - without)
    watched = f"{LOAD_JOBS_PER_SECOND} jobs/s on 2 workers, watched {seconds:g} s"
    return [
        Figure(SCENARIO, "daemon CPU, busy queue, no dashboard", without, "%", detail=watched),
        Figure(SCENARIO, f"daemon CPU, busy queue, {DASHBOARDS} dashboards", with_pages, "%"),
        Figure(
            SCENARIO,
            f"daemon CPU added by {DASHBOARDS} dashboards",
            added,
            "%",
            key="web.cpu",
            detail="% of one core; the two windows' noise included",
        ),
        Figure(
            SCENARIO,
            f"queuectl web CPU, {DASHBOARDS} open pages",
            web_cpu,
            "%",
            detail=f"{frames} event frames sent",
        ),
    ]


class _EventStreams:
    """`count` open /events streams, read in threads as a browser would."""

    def __init__(self, url: str, count: int) -> None:
        import urllib.request

        self.frames = 0
        self.responses = [urllib.request.urlopen(url + "/events", timeout=30) for _ in range(count)]
        self.threads = [
            threading.Thread(target=self._read, args=(r,), daemon=True) for r in self.responses
        ]
        for thread in self.threads:
            thread.start()

    def _read(self, response) -> None:
        try:
            for line in response:
                if line.startswith(b"data: "):
                    self.frames += 1
        except (OSError, ValueError, AttributeError):
            # close() from the main thread ends the read; http.client then fails in
            # whatever it was doing (AttributeError: its file is already gone).
            pass

    def close(self) -> None:
        for response in self.responses:
            response.close()
