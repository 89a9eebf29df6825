"""Bad input at the socket: each case gets a typed error or a closed connection
within a bounded time, and the daemon keeps serving everyone else."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from protocol.errors import ErrorCode
from tests.rawwire import connect, frame, packb, raw_frame, read_responses, request


@pytest.fixture
def guarded(daemon):
    """A daemon with short client limits, and a job that must survive every test."""
    with daemon.client() as client:
        client.config_set("client-timeout", "1.5")
        client.config_set("max-frame-bytes", str(64 * 1024))
        client.enqueue({"id": "precious", "command": "true"})
    return daemon


def still_serving(daemon) -> None:
    with daemon.client() as client:
        assert client.status()["jobs"]["pending"] >= 1
        assert client.get_job("precious")["state"] == "pending"


def error_of(response: dict) -> tuple[str, str]:
    assert response["ok"] is False, response
    return response["error"]["code"], response["error"]["message"]


@pytest.mark.parametrize(
    "message, code, words",
    [
        ({"id": 1, "op": "get_job", "args": {"id": 7}}, "bad_request", "'id' must be a string"),
        ({"id": 1, "op": "list_jobs", "args": {"limit": "ten"}}, "bad_request", "integer"),
        ({"id": 1, "op": "frobnicate"}, "unknown_op", "frobnicate"),
        ({"id": 1, "op": "status", "args": {"verbose": True}}, "bad_request", "'verbose'"),
        ({"id": 1, "op": "status", "extra": 1}, "bad_request", "'extra'"),
        ({"id": 1, "op": "cancel", "args": {}}, "bad_request", "missing required field 'id'"),
        ({"id": 1, "op": 5}, "bad_request", "'op' must be a string"),
        ({"id": 1.5, "op": "status"}, "bad_request", "'id' must be an integer"),
        ({"id": 1, "op": "status", "args": [1]}, "bad_request", "must be a map"),
        (
            {"id": 1, "op": "enqueue", "args": {"jobs": [{"command": "x", "colour": "red"}]}},
            "invalid_job",
            "unknown field 'colour'",
        ),
        (
            {"id": 1, "op": "enqueue", "args": {"jobs": [{"command": "x", "delay": float("nan")}]}},
            "invalid_job",
            "finite number",
        ),
        (
            {"id": 1, "op": "enqueue", "args": {"jobs": [{"command": "x", "delay": 1e12}]}},
            "invalid_job",
            "<= 1e+09",
        ),
        (
            {"id": 1, "op": "enqueue", "args": {"jobs": [{"command": "x", "id": "i" * 300}]}},
            "invalid_job",
            "longer than 256 bytes",
        ),
        (
            {"id": 1, "op": "enqueue", "args": {"jobs": [{"command": "x", "env": {"A": 1}}]}},
            "invalid_job",
            "map of string to string",
        ),
        (
            {"id": 1, "op": "config_set", "args": {"key": "max-retries", "value": [1, 2]}},
            "bad_request",
            "string, number or boolean",
        ),
        (
            {"id": 1, "op": "enqueue", "args": {"jobs": [{"command": "x", "run_at": "0-0"}]}},
            "invalid_job",
            "not an ISO 8601 time",
        ),
        (
            {"id": 1, "op": "edit", "args": {"id": "precious", "delay": 1e18}},
            "bad_request",
            "field 'delay' must be <= 1e+09",
        ),
        (
            {"id": 1, "op": "config_set", "args": {"key": "max-retries", "value": "9" * 23}},
            "bad_request",
            "max-retries: 99999999999999999999999 is out of range (0 to 1000)",
        ),
        # What the operating system cannot take is refused at once, not at every attempt.
        (
            {"id": 1, "op": "enqueue", "args": {"jobs": [{"command": "true\0"}]}},
            "invalid_job",
            "job: field 'command' must not contain a NUL byte",
        ),
        (
            {"id": 1, "op": "enqueue", "args": {"jobs": [{"command": "x", "env": {"A=B": "c"}}]}},
            "invalid_job",
            "variable name 'A=B' contains '='",
        ),
        (
            {"id": 1, "op": "enqueue", "args": {"jobs": [{"command": "x"}], "cwd": "tmp"}},
            "bad_request",
            "field 'cwd' must be an absolute path",
        ),
        (
            {"id": 1, "op": "edit", "args": {"id": "precious", "queue": "q\0"}},
            "bad_request",
            "field 'queue' must not contain a NUL byte",
        ),
        (
            {
                "id": 1,
                "op": "schedule_add",
                "args": {"name": "s", "cron": "@daily", "job": {"command": "x", "env": {"": "y"}}},
            },
            "invalid_job",
            "field 'env' has a variable with an empty name",
        ),
    ],
)
def test_invalid_requests_get_a_typed_error_and_the_connection_stays_usable(
    guarded, message, code, words
):
    sock = connect(guarded.socket)
    try:
        sock.sendall(frame(message))
        [response], _ = read_responses_one(sock)
        got_code, got_message = error_of(response)
        assert got_code == code
        assert words in got_message
        assert "\n" not in got_message
        assert request(sock, "status", request_id=2)["ok"]  # same connection still works
    finally:
        sock.close()
    still_serving(guarded)


def read_responses_one(sock):
    responses, closed = read_responses(sock, timeout=0.5)
    return responses[:1], closed


def test_limits_on_commands_envs_and_batches_are_enforced_with_clear_errors(guarded):
    with guarded.client() as client:
        client.config_set("max-command-bytes", "1000")
        client.config_set("max-env-bytes", "2000")
        client.config_set("max-batch", "10")
    sock = connect(guarded.socket)
    try:
        # A small submitting environment of its own: without one the daemon's is
        # used, and its size depends on the machine running the tests.
        small = {"environ": {"PATH": "/usr/bin:/bin"}, "cwd": "/"}
        cases = [
            (
                {"jobs": [{"command": "x" * 1001}], **small},
                "command exceeds max-command-bytes 1000",
            ),
            (
                {"jobs": [{"command": "x", "env": {"BIG": "y" * 2001}}], **small},
                "env exceeds max-env-bytes",
            ),
            (
                {"jobs": [{"command": "true"}] * 11, **small},
                "batch of 11 jobs exceeds max-batch 10",
            ),
            (
                {"jobs": [{"command": "true"}], "environ": {"HUGE": "z" * 3000}, "cwd": "/"},
                "submitting environment",
            ),
        ]
        for args, words in cases:
            response = request(sock, "enqueue", args)
            code, message = error_of(response)
            assert code == "too_large" and words in message, message
    finally:
        sock.close()
    still_serving(guarded)


def test_framing_errors_close_the_connection_after_a_typed_error(guarded):
    deep = b"\x91" * 60_000 + b"\xc0"  # an array in an array in an array ...
    cases = [
        (raw_frame(b"", length=0xFFFFFFFF), "too_large", "exceeds the limit"),
        (raw_frame(b"x" * 10, length=64 * 1024 + 1), "too_large", "exceeds the limit"),
        (raw_frame(deep), "bad_request", "nested too deeply"),
        (raw_frame(b"\xc1\xc1\xc1\xc1"), "bad_request", "not valid msgpack"),
        (raw_frame(packb([1, 2, 3])), "bad_request", "must be a msgpack map"),
        (raw_frame(packb({1: 2})), "bad_request", "map keys must be str"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "too_large", "exceeds the limit"),
    ]
    for data, code, words in cases:
        sock = connect(guarded.socket)
        try:
            started = time.monotonic()
            try:
                sock.sendall(data)
            except BrokenPipeError:
                pass  # the daemon may close before it has read everything
            responses, closed = read_responses(sock, timeout=5)
            assert closed, f"connection left open after {data[:20]!r}"
            assert time.monotonic() - started < 3
            assert error_of(responses[0])[0] == code
            assert words in error_of(responses[0])[1]
        finally:
            sock.close()
    still_serving(guarded)


def test_silent_truncated_and_dripping_clients_are_cut_off_in_bounded_time(guarded):
    body = frame({"id": 1, "op": "status"})
    for send in (b"", body[:2], body[:-1]):
        sock = connect(guarded.socket)
        try:
            sock.sendall(send)
            started = time.monotonic()
            responses, closed = read_responses(sock, timeout=6)
            took = time.monotonic() - started
            assert closed and 1.0 < took < 4, took
            code, message = error_of(responses[0])
            assert code == "timeout" and "client-timeout" in message
        finally:
            sock.close()
    # A byte every 0.5 s never completes a request within the timeout.
    sock = connect(guarded.socket)
    started = time.monotonic()
    try:
        closed = False
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.5)
        assert closed or time.monotonic() - started < 5
    finally:
        sock.close()
    still_serving(guarded)


def test_a_client_that_never_reads_is_dropped_while_others_are_served(guarded):
    with guarded.client() as client:
        client.enqueue(*({"command": "true", "id": f"bulk{i}"} for i in range(300)))
    hog = connect(guarded.socket)
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood = frame({"id": 1, "op": "list_jobs", "args": {"limit": 300}}) * 400
    stop = threading.Event()
    latencies: list[float] = []

    def others() -> None:
        with guarded.client() as client:
            while not stop.is_set():
                started = time.monotonic()
                client.status()
                latencies.append(time.monotonic() - started)
                time.sleep(0.05)

    watcher = threading.Thread(target=others)
    watcher.start()
    started = time.monotonic()
    try:
        hog.settimeout(10)
        dropped = False
        try:
            hog.sendall(flood)  # blocks once the daemon stops reading us
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            dropped = True
        if not dropped:
            # Still not reading: the daemon must give up on us within client-timeout.
            time.sleep(3)
            try:
                hog.sendall(flood)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                dropped = True
        assert dropped
        assert time.monotonic() - started < 15
    finally:
        stop.set()
        watcher.join()
        hog.close()
    assert latencies and max(latencies) < 1.0, max(latencies)
    still_serving(guarded)


def test_connections_beyond_the_limit_are_refused_then_served_again(guarded):
    with guarded.client() as client:
        client.config_set("max-connections", "4")
        client.config_set("client-timeout", "30")
    time.sleep(0.3)  # let the daemon notice that connection closed
    held = [connect(guarded.socket) for _ in range(4)]
    try:
        for sock in held:  # make sure each is being served
            assert request(sock, "hello")["ok"]
        extra = connect(guarded.socket)
        responses, closed = read_responses(extra, timeout=3)
        extra.close()
        assert closed
        code, message = error_of(responses[0])
        assert code == ErrorCode.UNAVAILABLE.value and "max-connections is 4" in message
        held.pop().close()
        time.sleep(0.2)
        with guarded.client() as client:
            assert client.status()["jobs"]["pending"] == 1
    finally:
        for sock in held:
            sock.close()


def test_the_client_library_reconnects_after_the_daemon_closed_its_idle_connection(guarded):
    with guarded.client() as client:
        first = client.status()["daemon"]["pid"]
        time.sleep(2.5)  # beyond client-timeout: the daemon has closed this connection
        assert client.status()["daemon"]["pid"] == first


def test_listing_jobs_with_huge_commands_pages_instead_of_overflowing_a_frame(daemon):
    command = "echo " + "x" * (120 * 1024)  # just under max-command-bytes
    with daemon.client() as client:
        for start in range(0, 100, 20):
            batch = range(start, start + 20)
            client.enqueue(*({"id": f"huge{i}", "command": command} for i in batch))
        # 100 jobs of 120 KiB would be a 12 MiB answer: the daemon pages it instead.
        page = client.call("list_jobs", limit=1000)
        assert 0 < len(page["jobs"]) < 100 and page["next"] is not None
        jobs = client.list_jobs()
    assert [j["id"] for j in jobs] == [f"huge{i}" for i in range(100)]
    listed = daemon.cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 100


BEYOND_64_BITS = "99999999999999999999999"


def one_job(**fields) -> dict:
    return {"jobs": [{"command": "true", **fields}]}


@pytest.mark.parametrize(
    "args, field",
    [
        (("enqueue", "-c", "true", "--priority", BEYOND_64_BITS), "priority"),
        (("enqueue", f'{{"command": "true", "priority": {BEYOND_64_BITS}}}'), "priority"),
        (("enqueue", f'{{"command": "true", "max_retries": {BEYOND_64_BITS}}}'), "max_retries"),
        (("queue", "set", "q", "--priority", "-" + BEYOND_64_BITS), "priority"),
        (("queue", "set", "q", "--concurrency", BEYOND_64_BITS), "concurrency"),
        (("worker", "start", "--count", BEYOND_64_BITS), "count"),
        (("edit", "precious", "--priority", BEYOND_64_BITS), "priority"),
        (("schedule", "add", "s", "--cron", "@daily", "--priority", BEYOND_64_BITS, "--", "x"),)
        + ("priority",),
    ],
)
def test_integers_beyond_64_bits_are_a_usage_error_naming_the_field(guarded, args, field):
    result = guarded.cli(*args)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert f"{field}' is out of range" in line
    assert "-9223372036854775808 to 9223372036854775807" in line
    with guarded.client() as client:
        assert [job["id"] for job in client.list_jobs()] == ["precious"]
        assert all(queue["name"] != "q" for queue in client.queue_list())
        assert client.schedule_list() == []
    still_serving(guarded)


@pytest.mark.parametrize(
    "args, words",
    [
        (("dlq", "retry", "--all", "--since", "9" * 20 + "w"), "reaches back further"),
        (("top", "--count", "1", "--interval", "1e400"), "--interval"),
    ],
)
def test_durations_too_long_for_a_clock_are_a_usage_error(guarded, args, words):
    result = guarded.cli(*args)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert words in line


def test_a_jobs_file_names_the_line_of_an_integer_beyond_64_bits(guarded):
    lines = ['{"command": "true"}', "", f'{{"command": "true", "priority": {BEYOND_64_BITS}}}']
    result = guarded.cli("enqueue", "--file", "-", input="\n".join(lines) + "\n")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "queuectl: line 3: field 'priority' is out of range: "
        "integers must be from -9223372036854775808 to 9223372036854775807"
    ]
    with guarded.client() as client:
        assert [job["id"] for job in client.list_jobs()] == ["precious"]


def test_the_client_library_refuses_what_msgpack_cannot_carry(guarded):
    from queuectl_client import BadArgument

    with guarded.client() as client:
        with pytest.raises(BadArgument, match=r"'jobs\[1\]\.priority' is out of range"):
            client.enqueue({"command": "true"}, {"command": "true", "priority": 2**64})
        with pytest.raises(BadArgument, match=r"'jobs\[0\]\.command' is not valid UTF-8"):
            client.enqueue({"command": "echo \udcff"})
        assert client.status()["jobs"]["pending"] == 1


@pytest.mark.parametrize(
    "op, args, code, field",
    [
        ("enqueue", one_job(priority=2**64 - 1), "invalid_job", "priority"),
        ("enqueue", one_job(max_retries=2**63), "invalid_job", "max_retries"),
        ("enqueue", one_job(delay=2**63), "invalid_job", "delay"),
        ("edit", {"id": "precious", "priority": 2**63}, "bad_request", "priority"),
        ("queue_set", {"name": "q", "priority": 2**64 - 1}, "bad_request", "priority"),
        ("list_jobs", {"limit": 2**63}, "bad_request", "limit"),
        ("logs", {"id": "precious", "offset": 2**64 - 1}, "bad_request", "offset"),
        ("config_set", {"key": "max-retries", "value": 2**63}, "bad_request", "value"),
        (
            "schedule_add",
            {"name": "s", "cron": "@daily", "job": {"command": "x", "priority": 2**63}},
            "invalid_job",
            "priority",
        ),
    ],
)
def test_integers_beyond_signed_64_bits_are_refused_naming_the_field(
    guarded, op, args, code, field
):
    sock = connect(guarded.socket)
    try:
        got_code, message = error_of(request(sock, op, args))
    finally:
        sock.close()
    assert got_code == code
    assert f"field '{field}' is out of range" in message
    assert "-9223372036854775808 to 9223372036854775807" in message
    still_serving(guarded)


def test_the_ends_of_the_signed_64_bit_range_are_accepted(guarded):
    with guarded.client() as client:
        client.enqueue(
            {"id": "low", "command": "true", "priority": -(2**63)},
            {"id": "high", "command": "true", "priority": 2**63 - 1, "max_retries": 2**63 - 1},
        )
        assert client.get_job("low")["priority"] == -(2**63)
        assert client.get_job("high")["max_retries"] == 2**63 - 1
