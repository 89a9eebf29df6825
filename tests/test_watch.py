"""The `watch` op (PROTOCOL.md 8.8): a stream of job changes and counts.

Through a real daemon: the answer, the first snapshot, the changes of a job's
life in order, the end of the stream when the client hangs up. The backlog's
coalescing and dropping are checked on the Watcher itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import wait_for

from protocol.errors import ErrorCode, ProtocolError
from queuectld.engine.events import JobEvents, Watcher


def _changes_until(frames, job_id: str, final: str, timeout: float = 15.0) -> list[str]:
    """The states reported for job_id, read from the stream until `final`."""
    seen: list[str] = []
    timer = threading.Timer(timeout, lambda: None)
    timer.start()
    try:
        for frame in frames:
            if frame["type"] != "jobs":
                continue
            seen += [job["state"] for job in frame["jobs"] if job["id"] == job_id]
            if final in seen:
                return seen
    finally:
        timer.cancel()
    raise AssertionError(f"the stream ended before {job_id} was {final}: {seen}")


def test_watch_answers_then_sends_a_snapshot(daemon):
    with daemon.client() as client:
        client.enqueue({"id": "a", "command": "true", "queue": "mail"})
    watching = daemon.client()
    frames = watching.watch(interval=0.2)
    first = next(frames)
    assert first["type"] == "snapshot"
    assert first["jobs"]["pending"] == 1
    assert first["workers"]["target"] == 0
    [mail] = [queue for queue in first["queues"] if queue["name"] == "mail"]
    assert mail["jobs"]["pending"] == 1
    # Snapshots keep coming at the interval while nothing happens.
    assert next(frames)["type"] == "snapshot"
    watching.close()


def test_watch_reports_a_job_from_enqueue_to_its_end(daemon):
    watching = daemon.client()
    frames = watching.watch()
    assert next(frames)["type"] == "snapshot"
    with daemon.client() as client:
        client.enqueue({"id": "j1", "command": "exit 3", "max_retries": 0, "queue": "q"})
        assert _changes_until(frames, "j1", "pending") == ["pending"]
        client.scale_workers(1)
        # Changes within one gathering are sent once, in the latest state.
        assert _changes_until(frames, "j1", "dead")[-1] == "dead"
        client.retry("j1")
        assert _changes_until(frames, "j1", "dead")[-1] == "dead"
        assert client.get_job("j1")["runs"] == 2
    watching.close()


def test_a_stream_frame_carries_the_watch_request_id_and_the_queue(daemon):
    watching = daemon.client()
    watching.watch()
    with daemon.client() as client:
        client.enqueue({"id": "x", "command": "true", "queue": "web"})
    while True:
        frame = watching._receive()
        assert "ok" not in frame and "closing" not in frame
        if frame["stream"]["type"] == "jobs":
            break
    assert frame["id"] == 1
    assert frame["stream"]["jobs"] == [{"id": "x", "state": "pending", "queue": "web"}]
    assert frame["stream"]["dropped"] == 0
    watching.close()


def test_a_closed_watch_leaves_the_daemon_serving(daemon):
    for _ in range(3):
        watching = daemon.client()
        next(watching.watch())
        watching.close()
    with daemon.client() as client:
        assert client.status()["jobs"]["pending"] == 0


def test_watch_refuses_an_interval_out_of_range(daemon):
    with daemon.client() as client, pytest.raises(ProtocolError) as caught:
        client.watch(interval=0.01)
    assert caught.value.code == ErrorCode.BAD_REQUEST


def test_a_watcher_coalesces_a_job_and_counts_what_it_drops():
    async def run() -> None:
        watcher = Watcher(backlog=2)
        watcher.add("a", "pending", "q")
        watcher.add("b", "pending", "q")
        watcher.add("a", "processing", "q")  # same job: replaced, keeps its place
        watcher.add("c", "pending", "q")  # over the backlog: dropped
        assert watcher.ready.is_set()
        jobs, dropped = watcher.take()
        assert [(j["id"], j["state"]) for j in jobs] == [("a", "processing"), ("b", "pending")]
        assert dropped == 1
        assert not watcher.ready.is_set()
        assert watcher.take() == ([], 0)

    asyncio.run(run())


def test_job_events_reach_watchers_and_still_wake_waiters():
    async def run() -> None:
        events = JobEvents()
        watcher = Watcher()
        events.watchers.add(watcher)
        waiter = events.subscribe("j")
        events.job_changed("j", "processing", "q")
        assert not waiter.done()
        events.job_changed("j", "completed", "q")
        assert waiter.result() == "completed"
        jobs, _ = watcher.take()
        assert jobs == [{"id": "j", "state": "completed", "queue": "q"}]

    asyncio.run(run())


def test_the_events_command_prints_each_change(daemon):
    proc = subprocess.Popen(
        [sys.executable, "-m", "queuectl_client.cli.main", "events", "--queue", "ev"],
        stdout=subprocess.PIPE, text=True, env=daemon.env(),
    )  # fmt: skip
    try:
        with daemon.client() as client:
            # The command subscribes once it has started: enqueue until it says so.
            deadline = time.monotonic() + 15
            n = 0
            while not select.select([proc.stdout], [], [], 0.2)[0]:
                assert time.monotonic() < deadline, "queuectl events printed nothing"
                n += 1
                client.enqueue({"id": f"early{n}", "command": "true", "queue": "ev"})
            assert re.fullmatch(r"early\d+ pending ev", proc.stdout.readline().strip())
            client.enqueue({"id": "other", "command": "true", "queue": "elsewhere"})
            client.enqueue({"id": "ev1", "command": "true", "queue": "ev"})
            line = proc.stdout.readline().strip()
            while line.startswith("early"):
                line = proc.stdout.readline().strip()
            assert line == "ev1 pending ev"
    finally:
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(10)
        proc.stdout.close()


def test_a_watcher_that_never_reads_holds_up_nothing_and_is_let_go(daemon):
    from rawwire import connect, frame

    with daemon.client() as client:
        client.config_set("client-timeout", 1)
    stuck = connect(daemon.socket)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(frame({"id": 1, "op": "watch", "args": {"interval": 0.2}}))
    started = time.monotonic()
    with daemon.client() as client:
        # Thousands of changes, in frames far larger than the socket's buffers.
        for batch in range(30):
            client.enqueue(*({"command": f"echo {batch}"} for _ in range(1000)))
            calls = time.monotonic()
            assert client.status()["jobs"]["pending"] == (batch + 1) * 1000
            assert time.monotonic() - calls < 1.0, "a stuck watcher slowed the daemon"
            time.sleep(0.06)
        # Past client-timeout without reading, the stuck watcher was disconnected...
        wait_for(lambda: time.monotonic() - started > 2.5)
        watching = daemon.client()
        assert next(watching.watch())["type"] == "snapshot"  # ...and watching still works
        watching.close()
    # It gets what fit in the buffers, then the end of the connection; a watcher
    # still connected would keep receiving snapshots instead.
    stuck.settimeout(10)
    received, ended = 0, False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        chunk = stuck.recv(1 << 20)
        if not chunk:
            ended = True
            break
        received += len(chunk)
    stuck.close()
    assert received and ended


def test_a_watch_followed_by_a_bad_frame_is_answered_then_closed(daemon):
    from rawwire import connect, frame, raw_frame, read_responses

    sock = connect(daemon.socket)
    sock.sendall(frame({"id": 1, "op": "watch", "args": {}}) + raw_frame(b"\xc1"))
    responses, closed = read_responses(sock, timeout=5)
    sock.close()
    assert closed
    assert responses[0]["ok"] and responses[0]["result"]["watching"]
    assert not any("stream" in r for r in responses)
    # No watcher was left behind: the limit of 64 is still free to use.
    watchers = [daemon.client() for _ in range(64)]
    streams = []  # kept: a stream dropped by the client closes its connection
    try:
        for client in watchers:
            streams.append(client.watch())
            next(streams[-1])
        with daemon.client() as one_more, pytest.raises(ProtocolError) as refused:
            one_more.watch()
        assert refused.value.code == ErrorCode.UNAVAILABLE
    finally:
        for client in watchers:
            client.close()
