"""Several daemons, one PostgreSQL database: each with its own data home, started as
real processes with `--store`, killed with real signals.

Each test gets a database of its own (tests/postgres.py). The lease is shortened
(`--lease-seconds`, `--heartbeat-seconds`) so that a rescue happens within seconds.
Every daemon is stopped, and every process it started killed, by pid afterwards.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest

from protocol.times import parse_iso
from queuectld.fleet.survivors import RUN_MARKER
from tests.conftest import ROOT, Daemon, wait_for
from tests.postgres import POSTGRES_WANTED, postgres_database

if not POSTGRES_WANTED:
    pytest.skip(
        "QUEUECTL_TEST_POSTGRES=0: the postgres backend is left out", allow_module_level=True
    )

import psycopg  # noqa: E402 - only once PostgreSQL is known to be wanted

from queuectld.store.postgres.listen import APPLICATION_NAME as LISTENER_NAME  # noqa: E402

SECRET = "s3cret-pw"  # the server trusts local connections, so any password opens it
FAST_LEASE = ("--heartbeat-seconds", "0.5", "--lease-seconds", "4")


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database's URL, with a password in it that must never be shown."""
    with postgres_database("cluster") as url:
        yield url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@", 1)


@pytest.fixture
def start_daemons(database) -> Iterator[Callable[..., list[Daemon]]]:
    """start_daemons(count, workers) -> daemons, each in a new data home, all on
    `database`."""
    started: list[Daemon] = []
    homes: list[Path] = []

    def start(count: int, workers: int, *extra: str) -> list[Daemon]:
        daemons = []
        for _ in range(count):
            home = Path(tempfile.mkdtemp(prefix="qctl-"))
            homes.append(home)
            daemon = Daemon(home, workers, ("--store", database, *FAST_LEASE, *extra))
            started.append(daemon)
            daemons.append(daemon.start())
        return daemons

    yield start
    for daemon in started:
        daemon.cleanup()
    for home in homes:
        shutil.rmtree(home, ignore_errors=True)


def daemon_id(daemon: Daemon) -> str:
    return (daemon.home / "daemon.id").read_text().strip()


def counts(daemon: Daemon) -> dict[str, int]:
    return daemon.client().status()["jobs"]


def all_completed(daemon: Daemon, total: int) -> bool:
    jobs = counts(daemon)
    assert jobs["dead"] == 0 and jobs["canceled"] == 0, jobs
    return jobs["completed"] == total


# -- the store location ---------------------------------------------------------------


def _queuectld(home: Path, *args: str, env: dict[str, str] | None = None):
    environ = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "queuectld", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_daemon_that_cannot_reach_its_database_says_so_in_one_line(home, how):
    unreachable = f"postgresql://postgres:{SECRET}@127.0.0.1:1/qctl_nowhere"
    if how == "flag":
        result = _queuectld(home, "--store", unreachable)
    else:
        result = _queuectld(home, env={"QUEUECTL_STORE": unreachable})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("queuectld: cannot reach the job store postgresql://postgres:***@")
    assert SECRET not in result.stderr + result.stdout
    assert not (home / "queuectl.db").exists()


def test_a_lease_shorter_than_three_heartbeats_is_refused(home):
    result = _queuectld(home, "--heartbeat-seconds", "2", "--lease-seconds", "5")
    assert result.returncode == 2
    assert "--lease-seconds (5) must be at least 3 heartbeats" in result.stderr


def test_status_on_sqlite_lists_the_one_daemon(daemon):
    status = daemon.cli_json("status")
    [only] = status["daemons"]
    assert only["id"] == daemon_id(daemon) == status["daemon"]["id"]
    assert (only["host"], only["pid"]) == (socket.gethostname(), daemon.pid)
    assert only["workers"] == {"busy": 0, "idle": 0, "target": 0}
    assert status["daemon"]["store"] == str(daemon.home / "queuectl.db")
    assert status["daemon"]["wakeups"] == "local"
    text = daemon.cli("status").stdout
    assert f"daemon {only['id']} on {only['host']} (pid {daemon.pid})" in text


# -- several daemons, one database ----------------------------------------------------


def test_status_on_any_daemon_shows_every_daemon_and_never_the_password(start_daemons):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 2)[0]
    ids = {daemon_id(a): a, daemon_id(b): b}

    def b_seen_from_a():
        listed = {d["id"]: d for d in a.cli_json("status")["daemons"]}
        seen = listed.get(daemon_id(b))
        return len(listed) == 2 and seen and seen["workers"]["idle"] == 2 and listed

    listed = wait_for(b_seen_from_a, 15, what="b's two idle workers in a's status")
    for daemon_id_, record in listed.items():
        assert (record["host"], record["pid"]) == (socket.gethostname(), ids[daemon_id_].pid)
    assert listed[daemon_id(a)]["workers"] == {"busy": 0, "idle": 0, "target": 0}
    assert listed[daemon_id(b)]["workers"] == {"busy": 0, "idle": 2, "target": 2}
    status = a.cli("status", "--json").stdout + a.cli("status").stdout
    assert "postgresql://postgres:***@127.0.0.1" in status
    text = a.cli("status").stdout
    assert sum(line.startswith("  daemon ") for line in text.splitlines()) == 2
    assert f"daemon {daemon_id(b)} on {socket.gethostname()} (pid {b.pid}): 0 busy" in text
    for daemon in (a, b):
        assert SECRET not in status + daemon.log_text()


def test_show_says_which_daemon_ran_each_run(start_daemons, workdir):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 1)[0]
    [job_id] = a.client().enqueue({"command": "true"}, cwd=str(workdir))
    wait_for(lambda: a.client().get_job(job_id)["state"] == "completed", 20, what="the job")
    [run] = a.cli_json("show", job_id)["history"]
    assert (run["daemon"], run["host"]) == (daemon_id(b), socket.gethostname())
    b.stop()  # a daemon that left: its runs keep its id, its host is no longer known
    [run] = a.cli_json("show", job_id)["history"]
    assert (run["daemon"], run["host"]) == (daemon_id(b), None)


def test_three_daemons_drain_three_thousand_jobs_each_exactly_once(start_daemons, workdir):
    daemons = start_daemons(3, 2)
    ran = workdir / "ran"
    jobs = [{"command": f'echo "$QUEUECTL_JOB_ID ${RUN_MARKER}" >> {ran}'}] * 3000
    ids = [i for batch in daemons[0].client().enqueue_many(jobs, cwd=str(workdir)) for i in batch]
    wait_for(lambda: all_completed(daemons[1], 3000), 240, 0.5, what="3,000 jobs to complete")
    lines = [line.split() for line in ran.read_text().splitlines()]
    times = collections.Counter(job for job, _ in lines)
    assert sorted(times) == sorted(ids)
    assert set(times.values()) == {1}
    ran_on = collections.Counter(marker.split(":")[0] for _, marker in lines)
    assert set(ran_on) == {daemon_id(d) for d in daemons}  # the work was shared


def _running_on(owner: str) -> set[str]:
    """The runs `owner` started that still have a process (their marker names the
    daemon), wherever they are."""
    found = set()
    for process in psutil.process_iter():
        try:
            marker = process.environ().get(RUN_MARKER, "")
        except psutil.Error:
            continue
        if marker.startswith(owner + ":"):
            found.add(marker)
    return found


def traced(trace: Path, seconds: float) -> str:
    """A job that writes its start and its end, with its run's marker, to `trace`."""
    record = f'"$QUEUECTL_JOB_ID ${RUN_MARKER} $(date +%s.%N)" >> {trace}'
    return f"echo start {record}; sleep {seconds}; echo end {record}"


def check_runs(trace: Path, ids: list[str], lost: str, dead_at: float) -> set[str]:
    """Check the trace: no job ran twice at once; only the runs of the daemon `lost`
    were cut short, and they had ended by `dead_at`; every job ran to its end once
    on the other daemons, or on `lost` (more than once only there: a run that ended
    as its daemon died, before its result was stored, runs again, which is the
    at-least-once of GUARANTEES.md). Returns the jobs whose run was cut short."""
    runs: dict[tuple[str, str], dict[str, float]] = collections.defaultdict(dict)
    for line in trace.read_text().splitlines():
        edge, job, marker, at = line.split()
        runs[(job, marker)][edge] = float(at)
    by_job: dict[str, list[tuple[float, float, str]]] = collections.defaultdict(list)
    cut_short: set[str] = set()
    unended: set[tuple[str, float]] = set()
    for (job, marker), edges in runs.items():
        owner = marker.split(":")[0]
        if "end" not in edges:
            assert owner == lost, f"a run of {job} on a live daemon never ended"
            assert edges["start"] < dead_at
            cut_short.add(job)
            unended.add((job, edges["start"]))
        by_job[job].append((edges["start"], edges.get("end", dead_at), owner))
    assert sorted(by_job) == sorted(ids)
    assert cut_short, "some runs should have been cut short"
    for job, spans in by_job.items():
        ended = [owner for start, end, owner in spans if (job, start) not in unended]
        assert ended, f"{job} never ran to its end"
        assert sum(owner != lost for owner in ended) <= 1, f"{job} ran to its end twice"
        spans.sort()
        for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
            assert end <= start, f"{job} ran on {first} and {second} at once"
    return cut_short


def rescued_runs(daemon: Daemon, job: str) -> list[dict]:
    return [
        run for run in daemon.client().get_job(job)["history"] if run["outcome"] == "interrupted"
    ]


def test_a_daemon_killed_mid_drain_loses_nothing_and_no_job_runs_twice_at_once(
    start_daemons, workdir
):
    daemons = start_daemons(3, 2)
    a, victim, c = daemons
    trace = workdir / "trace"
    total = 240
    ids = a.client().enqueue(*[{"command": traced(trace, 0.2)}] * total, cwd=str(workdir))
    wait_for(lambda: counts(a)["completed"] >= total // 4, 60, 0.1, what="a quarter done")
    lost = daemon_id(victim)
    assert _running_on(lost), "the victim should have been running jobs"
    victim.kill9()
    # Its workers kill their jobs as the daemon dies; once none is left, every run the
    # victim started has ended, whatever the trace says.
    wait_for(lambda: not _running_on(lost), 10, 0.05, what="the victim's jobs to die")
    dead_at = time.time()
    wait_for(lambda: all_completed(a, total), 120, 0.25, what="every job to complete")
    for job in check_runs(trace, ids, lost, dead_at):
        assert [(run["daemon"], run["error"]) for run in rescued_runs(a, job)] == [
            (lost, "interrupted: daemon lost")
        ]
        assert a.client().get_job(job)["history"][-1]["daemon"] != lost
    alive = {d["id"] for d in c.client().status()["daemons"]}
    assert alive == {daemon_id(a), daemon_id(c)}


class Cable:
    """A TCP relay to the PostgreSQL server that a test can cut (every connection
    dropped, new ones refused) and mend: a network split between one daemon and
    the database, while the daemon itself keeps running."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._server = socket.create_server(("127.0.0.1", 0))
        port = self._server.getsockname()[1]
        self.url = urlunsplit(parts._replace(netloc=parts.netloc.replace(
            f"{self._target[0]}:{self._target[1]}", f"127.0.0.1:{port}"
        )))  # fmt: skip
        assert self.url != url
        self._cut = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for end in self._open:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()
            self._open.clear()

    def mend(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self.cut()
        self._server.close()


def test_a_daemon_cut_off_from_the_database_kills_its_jobs_before_its_lease_runs_out(
    start_daemons, database, workdir
):
    cable = Cable(database)
    try:
        a, c = start_daemons(2, 1)
        [cut_off] = start_daemons(1, 2, "--store", cable.url)
        lost = daemon_id(cut_off)
        trace = workdir / "trace"
        # Jobs that ignore SIGTERM: only the fence's early SIGKILL ends them in time
        # (kill-grace, 5 s, is longer than what is left of the lease).
        command = "trap '' TERM; " + traced(trace, 5)
        ids = a.client().enqueue(*[{"command": command}] * 6, cwd=str(workdir))
        wait_for(lambda: len(_running_on(lost)) == 2, 20, 0.05, what="two jobs on the daemon")
        cable.cut()
        cut_at = time.time()
        wait_for(lambda: not _running_on(lost), 10, 0.05, what="the cut-off daemon's jobs to die")
        dead_at = time.time()
        # Killed before the others may presume it dead (4 s after its last heartbeat).
        assert dead_at - cut_at < 4.0
        assert "lease not renewed for" in cut_off.log_text()
        wait_for(lambda: all_completed(a, 6), 60, 0.25, what="every job to complete")
        cut_short = check_runs(trace, ids, lost, dead_at)
        assert len(cut_short) == 2

        cable.mend()  # it rejoins by itself; its own results of the killed runs come late
        wait_for(lambda: "lease renewed again" in cut_off.log_text(), 20, what="a rejoin")
        for job in cut_short:
            wait_for(lambda j=job: "late_result" in rescued_runs(a, j)[0], 20, what="late result")
            [rescued] = rescued_runs(a, job)
            assert (rescued["daemon"], rescued["error"]) == (lost, "interrupted: daemon lost")
            assert rescued["late_result"]["error"] == "interrupted: lease not renewed"
            assert a.client().get_job(job)["state"] == "completed"
        for daemon in (a, c):
            assert daemon.cli("worker", "stop").returncode == 0
        [job_id] = cut_off.client().enqueue({"command": "true"}, cwd=str(workdir))
        wait_for(lambda: cut_off.client().get_job(job_id)["state"] == "completed", 20)
        assert cut_off.client().get_job(job_id)["history"][0]["daemon"] == lost
    finally:
        cable.close()


# -- wake-ups across daemons ----------------------------------------------------------


def _wait_seconds(daemon: Daemon, job_id: str) -> float:
    """From enqueue to the start of its first run, as the daemons recorded them."""
    job = daemon.client().get_job(job_id)
    return parse_iso(job["history"][0]["started_at"]) - parse_iso(job["created_at"])


def _started_through_b(a: Daemon, b: Daemon, workdir: Path, count: int) -> list[float]:
    waits = []
    for _ in range(count):
        [job_id] = a.client().enqueue({"command": "true"}, cwd=str(workdir))
        wait_for(lambda j=job_id: a.client().get_job(j)["state"] == "completed", 20, 0.01)
        assert a.client().get_job(job_id)["history"][0]["daemon"] == daemon_id(b)
        waits.append(_wait_seconds(a, job_id))
    return waits


def test_an_enqueue_through_one_daemon_starts_at_once_on_another(start_daemons, workdir):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 1)[0]
    wait_for(lambda: b.client().status()["workers"]["idle"] == 1, 15, what="b's worker")
    waits = _started_through_b(a, b, workdir, 10)
    # Polling would take up to a second (POLL_SECONDS); a notification, milliseconds.
    assert statistics.median(waits) < 0.25, waits
    assert "cannot listen" not in b.log_text()
    assert b.client().status()["daemon"]["wakeups"] == "notify"


def test_a_lost_listening_connection_falls_back_to_polling_then_listens_again(
    start_daemons, database, workdir
):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 1)[0]
    wait_for(lambda: b.client().status()["workers"]["idle"] == 1, 15, what="b's worker")
    with psycopg.connect(database, autocommit=True) as admin:
        for _ in range(2):  # twice in a row: still logged once per outage
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                (LISTENER_NAME,),
            )
            time.sleep(0.3)
        [job_id] = a.client().enqueue({"command": "true"}, cwd=str(workdir))
        wait_for(lambda: a.client().get_job(job_id)["state"] == "completed", 10, 0.05)
        wait_for(lambda: "listening for other daemons' wake-ups again" in b.log_text(), 10)
    assert b.log_text().count("cannot listen for other daemons' wake-ups") == 1
    assert statistics.median(_started_through_b(a, b, workdir, 5)) < 0.25


def test_a_job_running_on_another_daemon_is_canceled_through_any(start_daemons, workdir):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 1)[0]
    [job_id] = a.client().enqueue({"command": "sleep 30"}, cwd=str(workdir))
    wait_for(lambda: a.client().get_job(job_id)["state"] == "processing", 20, what="a start")
    began = time.monotonic()
    canceled = a.cli_json("cancel", job_id)
    assert time.monotonic() - began < 5
    assert canceled["state"] == "canceled"
    [run] = canceled["history"]
    assert (run["outcome"], run["daemon"]) == ("canceled", daemon_id(b))
    assert "canceled through another daemon" in b.log_text()


def test_a_wait_through_one_daemon_sees_a_job_end_on_another(start_daemons, workdir):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 1)[0]
    [job_id] = a.client().enqueue({"command": "sleep 0.5"}, cwd=str(workdir))
    began = time.monotonic()
    result = a.client().call("wait", ids=[job_id], timeout=30)
    assert result == {"states": {job_id: "completed"}, "done": True}
    # Without a job event from b, a reads the store every half second.
    assert time.monotonic() - began < 3
    assert a.client().get_job(job_id)["history"][0]["daemon"] == daemon_id(b)


def test_output_of_a_job_on_another_daemon_is_followed_live_and_outlives_that_daemon(
    start_daemons, workdir
):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 1)[0]
    script = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.25; done; printf tail"
    [job_id] = a.client().enqueue({"command": script}, cwd=str(workdir))
    expected = b"".join(b"line %d\n" % i for i in range(1, 7)) + b"tail"
    wait_for(lambda: a.client().get_job(job_id)["state"] != "pending", 20, what="a start")
    # Followed through a, which runs nothing: the output comes through the store.
    followed, live, offset = b"", False, 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = a.client().call("logs", id=job_id, offset=offset, wait=5)
        followed += reply["data"]
        offset = reply["offset"]
        if reply["data"] and reply["running"] and followed.count(b"\n") < 6:
            live = True  # some output arrived while the job still ran
        if not reply["running"]:
            break
    assert live, followed
    assert followed == expected
    assert a.client().get_job(job_id)["history"][0]["daemon"] == daemon_id(b)
    b.kill9()
    # Its host gone with it: here, its data home (and the log file in it) goes.
    shutil.rmtree(b.home / "logs")
    reply = a.client().call("logs", id=job_id)
    assert (reply["data"], reply["running"], reply["state"]) == (expected, False, "completed")


# -- rules the database keeps for all daemons together --------------------------------


def test_a_queue_limited_to_two_never_runs_more_across_three_daemons(start_daemons, workdir):
    daemons = start_daemons(3, 4)
    a = daemons[0]
    a.client().call("queue_set", name="lim", concurrency=2)
    trace = workdir / "trace"
    jobs = [{"command": traced(trace, 0.1), "queue": "lim"}] * 40
    a.client().enqueue(*jobs, cwd=str(workdir))
    wait_for(lambda: all_completed(a, 40), 90, 0.25, what="every job to complete")
    edges = []
    for line in trace.read_text().splitlines():
        edge, _, _, at = line.split()
        edges.append((float(at), 1 if edge == "start" else -1))
    running = most = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start
        running += step
        most = max(most, running)
    assert most == 2


def test_one_unique_key_from_32_clients_on_three_daemons_makes_one_job(start_daemons, workdir):
    daemons = start_daemons(3, 0)

    def submit(n: int) -> str:
        client = daemons[n % 3].client()
        [job_id] = client.enqueue({"command": "true", "unique_key": "once"}, cwd=str(workdir))
        return job_id

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        ids = set(pool.map(submit, range(32)))
    assert len(ids) == 1
    assert [counts(d)["pending"] for d in daemons] == [1, 1, 1]  # one job, seen by all


def test_the_dashboard_overview_lists_every_daemon_of_the_store(start_daemons):
    from web_tools import run_app

    a, b = start_daemons(2, 1)
    ids = {daemon_id(a), daemon_id(b)}
    wait_for(lambda: len(a.client().status()["daemons"]) == 2, what="both daemons registered")

    async def check(c):
        text = await (await c.get("/")).text()
        assert '<table id="daemons">' in text
        assert all(f"<code>{one}</code>" in text for one in ids)

    run_app(a.home, check)


# -- rule changes through one daemon reach the others --------------------------------


def _states(daemon: Daemon, ids: list[str]) -> set[str]:
    return {daemon.client().get_job(job_id)["state"] for job_id in ids}


def test_a_pause_through_one_daemon_stops_starts_on_the_others(start_daemons, workdir):
    a, b, c = start_daemons(3, 1)
    a.client().call("queue_pause", name="q")
    ids = b.client().enqueue(*[{"command": "true", "queue": "q"}] * 6, cwd=str(workdir))
    ids += c.client().enqueue(*[{"command": "true", "queue": "q"}] * 6, cwd=str(workdir))
    time.sleep(1.5)  # a start would take milliseconds
    assert all(_states(d, ids) == {"pending"} for d in (a, b, c))
    c.client().call("queue_resume", name="q")
    wait_for(lambda: _states(a, ids) == {"completed"}, 20, what="every job to complete")


def test_a_setting_changed_through_one_daemon_is_what_another_applies(start_daemons, workdir):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 1)[0]
    assert a.cli("config", "set", "max-retries", "0").returncode == 0
    # Told by a notification, not by a restart.
    wait_for(lambda: b.cli_json("config", "get", "max-retries")["value"] == 0, 5, 0.05)
    [job_id] = b.client().enqueue({"command": "false"}, cwd=str(workdir))
    wait_for(lambda: b.client().get_job(job_id)["state"] == "dead", 20, what="the job to die")
    job = b.client().get_job(job_id)
    assert job["max_retries"] == 0 and len(job["history"]) == 1
    # The fleet size stays each daemon's own.
    assert b.client().status()["workers"]["target"] == 1


def test_a_per_daemon_setting_is_each_daemons_own_and_survives_its_restart(start_daemons):
    a, b = start_daemons(2, 0)
    assert a.cli("config", "set", "kill-grace", "1").returncode == 0
    assert a.cli("config", "set", "max-retries", "7").returncode == 0
    wait_for(lambda: b.cli_json("config", "get", "max-retries")["value"] == 7, 5, 0.05)
    assert b.cli_json("config", "get", "kill-grace") == {
        "key": "kill-grace",
        "value": 5.0,
        "scope": "daemon",
    }
    assert b.cli_json("config", "get", "max-retries")["scope"] == "cluster"
    a.stop()
    a.start()
    assert a.cli_json("config", "get", "kill-grace")["value"] == 1.0
    b.stop()
    b.start()
    assert b.cli_json("config", "get", "kill-grace")["value"] == 5.0


def test_a_drain_through_one_daemon_stops_the_others(start_daemons, workdir):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 2)[0]
    a.client().call("worker_drain")
    wait_for(lambda: b.client().status()["workers"]["draining"], 5, 0.05, what="b to drain")
    ids = a.client().enqueue(*[{"command": "true"}] * 4, cwd=str(workdir))
    time.sleep(1.5)
    assert _states(b, ids) == {"pending"}
    b.client().call("worker_resume")
    wait_for(lambda: _states(a, ids) == {"completed"}, 20, what="every job to complete")


def test_a_queue_hook_set_through_one_daemon_runs_on_another(start_daemons, workdir):
    a, b = start_daemons(1, 0)[0], start_daemons(1, 1)[0]
    ended = workdir / "ended"
    a.client().call("queue_set", name="q", on_finish=f"echo $QUEUECTL_JOB_ID >> {ended}")
    time.sleep(0.5)  # the news takes milliseconds; b then ends the job and runs the hook
    [job_id] = a.client().enqueue({"command": "true", "queue": "q"}, cwd=str(workdir))
    wait_for(lambda: ended.exists() and ended.read_text().split() == [job_id], 10, 0.05)
    assert a.client().get_job(job_id)["history"][0]["daemon"] == daemon_id(b)


def test_each_cron_fire_time_makes_one_job_across_three_daemons(start_daemons, workdir):
    from datetime import datetime, timedelta, timezone

    # Scheduler clocks running 60 times faster, started as one clock: all three
    # daemons come to each minute together and try to fire it.
    origin, began = datetime(2030, 1, 1, 10, 0, 30, tzinfo=timezone.utc), time.time()

    def clock() -> str:
        at = origin + timedelta(seconds=(time.time() - began) * 60)
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + ",60"

    daemons = [start_daemons(1, 0, "--clock", clock())[0] for _ in range(3)]
    added = daemons[1].cli("schedule", "add", "tick", "--cron", "* * * * *", "--", "true")
    assert added.returncode == 0, added.stderr
    client = daemons[0].client()

    def firings() -> list[str]:
        return sorted(j["id"] for j in client.list_jobs() if j["id"].startswith("tick@"))

    wait_for(lambda: len(firings()) >= 8, 30, 0.2, what="eight firings")
    times = [parse_iso(job_id.split("@", 1)[1]) for job_id in firings()]
    steps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert set(steps) == {60}, times  # none twice, none left out
    assert len(client.list_jobs()) == len(times)  # no firing under another id
    assert not any("firing schedules failed" in d.log_text() for d in daemons)


def _leads(daemons: list[Daemon]) -> list[Daemon]:
    return [d for d in daemons if "taking over pruning" in d.log_text()]


def _lead_holders(database: str) -> int:
    from queuectld.store.postgres.schema import HOUSEKEEPING_LOCK, LOCK_SPACE

    with psycopg.connect(database) as conn:
        [(count,)] = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s::oid AND objid = %s::oid",
            (LOCK_SPACE, HOUSEKEEPING_LOCK),
        ).fetchall()
    return count


def test_one_daemon_prunes_for_all_and_another_takes_over_when_it_dies(
    start_daemons, database, workdir
):
    daemons = start_daemons(3, 1)
    a, b, c = daemons
    a.client().enqueue(*[{"command": "true"}] * 12, cwd=str(workdir))
    wait_for(lambda: all_completed(a, 12), 30, what="every job to complete")
    # Announced to all: each daemon's retention runs at once, and only one prunes.
    assert c.cli("config", "set", "retention-count", "2").returncode == 0
    wait_for(lambda: counts(c)["completed"] == 2, 10, 0.05, what="the pruning")
    [leader] = _leads(daemons)
    assert _lead_holders(database) == 1

    leader.kill9()
    others = [d for d in daemons if d is not leader]
    others[0].client().enqueue(*[{"command": "true"}] * 5, cwd=str(workdir))
    wait_for(lambda: all_completed(others[0], 7), 30, what="the new jobs to complete")
    # Its database session ended with it, and its lead with that: the next pass
    # of another daemon takes over (here at once, by a retention change).
    assert others[1].cli("config", "set", "retention-count", "1").returncode == 0
    wait_for(lambda: counts(others[0])["completed"] == 1, 10, 0.05, what="pruning again")
    assert len(_leads(others)) == 1
    assert _lead_holders(database) == 1
