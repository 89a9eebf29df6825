"""The wire format: framing limits and request validation on their own, then
the cases PROTOCOL.md pins down, in raw frames against a running daemon."""

from __future__ import annotations

import json
import socket
import struct
import time

import msgpack
import pytest

from protocol import ErrorCode, FrameDecoder, FrameError, ProtocolError, pack_frame
from protocol.framing import MAX_NESTING, unpack_body
from protocol.messages import parse_request, validate_job_spec
from protocol.times import parse_iso, to_iso
from tests.conftest import ROOT
from tests.rawwire import connect, frame, packb, raw_frame, read_responses, request


def test_frame_round_trip_in_pieces():
    frames = pack_frame({"id": 1, "op": "status"}) + pack_frame({"id": 2, "op": "hello"})
    decoder = FrameDecoder()
    messages = []
    for byte in frames:  # worst case: one byte at a time
        messages += decoder.feed(bytes([byte]))
    assert messages == [{"id": 1, "op": "status"}, {"id": 2, "op": "hello"}]
    assert decoder.pending_bytes == 0


def test_length_prefix_beyond_limit_is_refused_before_the_body():
    decoder = FrameDecoder(max_frame=1024)
    with pytest.raises(FrameError, match="exceeds"):
        decoder.feed(struct.pack(">I", 1025))


def test_body_must_be_a_map():
    body = msgpack.packb([1, 2, 3])
    with pytest.raises(FrameError, match="map"):
        FrameDecoder().feed(struct.pack(">I", len(body)) + body)


def test_garbage_body_is_a_frame_error():
    with pytest.raises(FrameError):
        FrameDecoder().feed(struct.pack(">I", 3) + b"\xc1\xc1\xc1")


@pytest.mark.parametrize(
    "message, code, text",
    [
        ({"id": 1}, ErrorCode.BAD_REQUEST, "'op'"),
        ({"id": 1, "op": "nope"}, ErrorCode.UNKNOWN_OP, "nope"),
        ({"id": 1, "op": "get_job", "args": {}}, ErrorCode.BAD_REQUEST, "'id'"),
        ({"id": 1, "op": "get_job", "args": {"id": 5}}, ErrorCode.BAD_REQUEST, "string"),
        ({"id": 1, "op": "status", "args": {"x": 1}}, ErrorCode.BAD_REQUEST, "'x'"),
        ({"id": "1", "op": "status"}, ErrorCode.BAD_REQUEST, "'id'"),
        ({"id": 1, "op": "worker_scale", "args": {"count": -1}}, ErrorCode.BAD_REQUEST, ">= 0"),
        (
            {"id": 1, "op": "worker_scale", "args": {"count": True}},
            ErrorCode.BAD_REQUEST,
            "integer",
        ),
    ],
)
def test_bad_requests_name_what_is_wrong(message, code, text):
    with pytest.raises(ProtocolError) as caught:
        parse_request(message)
    assert caught.value.code == code
    assert text in caught.value.message


def test_job_spec_validation_names_the_field():
    with pytest.raises(ProtocolError, match="unknown field 'colour'"):
        validate_job_spec({"command": "true", "colour": "red"})
    with pytest.raises(ProtocolError, match="missing required field 'command'"):
        validate_job_spec({"id": "x"})
    with pytest.raises(ProtocolError, match="must not be empty"):
        validate_job_spec({"command": ""})
    with pytest.raises(ProtocolError, match="not both"):
        validate_job_spec({"command": "true", "delay": 1, "run_at": "2030-01-01T00:00:00Z"})
    with pytest.raises(ProtocolError, match="max_retries"):
        validate_job_spec({"command": "true", "max_retries": -1})
    assert validate_job_spec({"command": "true", "env": {"A": "b"}, "priority": -3})


def test_iso_times_round_trip():
    assert to_iso(0) == "1970-01-01T00:00:00.000Z"
    assert parse_iso("1970-01-01T00:00:01Z") == 1.0
    assert parse_iso("1970-01-01T01:00:01+01:00") == 1.0
    with pytest.raises(ValueError):
        parse_iso("tomorrow")


# -- malformed bodies: the daemon's own words (PROTOCOL.md 2) -----------------------

# Phrases of the msgpack library and of Python that must never reach a client.
LIBRARY_WORDS = (
    "strict_map_key",
    "FormatError",
    "ExtraData",
    "StackError",
    "unpack(b)",
    "received extra data",
    "Unpack failed",
    "max_map_len",
    "codec can't decode",
    "NoneType",
    "b'",
)


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"", "body is empty"),
        (b"\x81\xa1a", "body ends in the middle of a msgpack value"),
        (b"\x80\x80", "body has bytes after its msgpack value (one frame carries one map)"),
        (b"\x81\xa1a\xc1", "body is not valid msgpack"),
        (b"\x93\x01\x02\x03", "body must be a msgpack map, not array"),
        (b"\xc0", "body must be a msgpack map, not nil"),
        (b"\x81\x01\x01", "body has a map key of type integer; map keys must be str"),
        (b"\x81\xc0\x01", "body has a map key of type nil; map keys must be str"),
        (b"\x81\xa1a\x81\xc4\x01a\x01", "body has a map key of type bin; map keys must be str"),
        (b"\x81\xa1\xff\x01", "body has a str that is not valid UTF-8 (raw bytes go in a bin)"),
        (
            b"\x91" * 2000,
            "body is nested too deeply (more than 1024 levels of maps and arrays)",
        ),
    ],
)
def test_bad_bodies_are_explained_in_the_protocols_words(body, reason):
    with pytest.raises(FrameError) as caught:
        FrameDecoder().feed(struct.pack(">I", len(body)) + body)
    assert str(caught.value) == reason


def test_bin_values_are_kept_and_only_bin_keys_are_refused():
    body = msgpack.packb({"data": b"\xc4\xc5\xc6", "name": "Ąą"}, use_bin_type=True)
    assert unpack_body(body) == {"data": b"\xc4\xc5\xc6", "name": "Ąą"}


# -- against a running daemon, in raw frames ---------------------------------------


def exchange(daemon, data: bytes, end_writes: bool = True) -> tuple[list[dict], bool]:
    """Send raw bytes on a new connection; every frame back, and whether it closed."""
    sock = connect(daemon.socket)
    try:
        try:
            sock.sendall(data)
            if end_writes:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may close before it has read everything
        return read_responses(sock, timeout=5)
    finally:
        sock.close()


def hello_with_client(value: bytes) -> bytes:
    """A hello request whose `client` argument is the msgpack bytes `value`."""
    body = b"\x83" + packb("id") + packb(1) + packb("op") + packb("hello")
    return raw_frame(body + packb("args") + b"\x81" + packb("client") + value)


def assert_closing_error(responses: list[dict], closed: bool, code: str) -> str:
    assert closed, "the connection was left open"
    [response] = responses
    assert response["id"] is None and response["ok"] is False
    assert response["closing"] is True
    assert response["error"]["code"] == code
    return response["error"]["message"]


def test_a_bin_map_key_is_a_bad_frame_that_says_keys_must_be_str(daemon):
    body = packb({"id": 1, "op": "hello", "args": {b"client": "x"}})
    message = assert_closing_error(*exchange(daemon, raw_frame(body)), "bad_request")
    assert message == "body has a map key of type bin; map keys must be str; closing the connection"


def test_nesting_of_1024_levels_is_read_and_1025_closes_the_connection(daemon):
    # The body's map, `args`, then arrays down to a nil: 1 + 1 + 1022 = 1024 levels.
    deepest = hello_with_client(b"\x91" * (MAX_NESTING - 2) + b"\xc0")
    responses, closed = exchange(daemon, deepest + frame({"id": 2, "op": "hello"}))
    assert [r["id"] for r in responses] == [1, 2] and closed  # closed: we ended our writes
    assert responses[0]["error"]["message"] == "hello: field 'client' must be a string"
    assert "closing" not in responses[0]
    too_deep = hello_with_client(b"\x91" * (MAX_NESTING - 1) + b"\xc0")
    message = assert_closing_error(*exchange(daemon, too_deep), "bad_request")
    assert "more than 1024 levels" in message


@pytest.mark.parametrize(
    "body",
    [
        b"\x81\x01\x01",  # an integer key
        b"\x82\xa2id\x01\xa2op",  # cut short
        packb({"id": 1, "op": "hello"}) + b"\x00",  # a second value
        b"\x83\xa2id\x01\xa2op\xc1\xa4args\x80",  # the reserved byte
        b"\x81\xa2op\xa2\xff\xfe",  # not UTF-8
        b"\x81\xa2id\xd5\xff\x00\x00",  # a malformed timestamp
        b"",
    ],
)
def test_malformed_frames_never_reach_the_client_in_a_librarys_words(daemon, body):
    message = assert_closing_error(*exchange(daemon, raw_frame(body)), "bad_request")
    assert message.startswith("body ") and message.endswith("; closing the connection")
    assert "\n" not in message
    assert not [words for words in LIBRARY_WORDS if words in message], message


def test_only_the_frame_that_ends_a_connection_is_marked_closing(daemon):
    # An answer to a request without an id also has id nil: `closing` tells them apart.
    responses, _ = exchange(daemon, frame({"op": "hello"}) + frame({"op": "nope"}), False)
    assert [(r["id"], r["ok"], "closing" in r) for r in responses] == [
        (None, True, False),
        (None, False, False),
    ]
    responses, closed = exchange(daemon, frame({"op": "hello"}) + raw_frame(b"\xc1"))
    assert [(r["id"], r.get("closing")) for r in responses] == [(None, None), (None, True)]
    assert closed


@pytest.mark.parametrize("request_id", [2**64 - 1, 2**63, -(2**63), 0])
def test_request_ids_are_echoed_over_the_whole_msgpack_integer_range(daemon, request_id):
    sock = connect(daemon.socket)
    try:
        assert request(sock, "hello", request_id=request_id)["id"] == request_id
    finally:
        sock.close()


def test_a_frame_cut_short_by_a_disconnect_is_dropped_and_never_run(daemon):
    whole = frame({"id": 1, "op": "enqueue", "args": {"jobs": [{"id": "whole", "command": "x"}]}})
    cut = frame({"id": 2, "op": "enqueue", "args": {"jobs": [{"id": "cut", "command": "x"}]}})
    # Still reading after our last write: the whole request is answered, the cut one
    # gets nothing (no error frame either) and the connection ends.
    responses, closed = exchange(daemon, whole + cut[:-3])
    assert [(r["id"], r["ok"]) for r in responses] == [(1, True)] and closed
    # Gone at once: the cut request is not run either.
    sock = connect(daemon.socket)
    sock.sendall(cut[:-1])
    sock.close()
    with daemon.client() as client:
        time.sleep(0.3)
        assert [job["id"] for job in client.list_jobs()] == ["whole"]


def test_a_changed_client_timeout_reaches_an_open_connection_at_its_next_wait(daemon):
    sock = connect(daemon.socket)
    try:
        assert request(sock, "hello")["ok"]  # now waiting under the default, 60 s
        with daemon.client() as client:
            client.config_set("client-timeout", "1")
        time.sleep(1.5)
        assert request(sock, "hello", request_id=2)["ok"]  # the old wait still held
        started = time.monotonic()
        responses, closed = read_responses(sock, timeout=5)  # the new limit holds now
        assert closed and 0.8 < time.monotonic() - started < 3
        assert responses[0]["error"]["code"] == "timeout" and responses[0]["closing"]
    finally:
        sock.close()


def test_stats_figures_have_the_nested_shape_the_spec_shows(daemon):
    text = (ROOT / "docs" / "PROTOCOL.md").read_text()
    example = text.split("`FIGURES` is a map of seven keys", 1)[1].split("```")[1]
    documented = json.loads(example)
    sock = connect(daemon.socket)
    try:
        stats = request(sock, "stats")["result"]
    finally:
        sock.close()
    assert stats["queues"] == {}
    figures = stats["total"]
    assert {key: set(value) for key, value in figures.items()} == {
        key: set(value) for key, value in documented.items()
    }


def test_worker_drain_refuses_a_timeout_without_wait_and_stays_undrained(daemon):
    sock = connect(daemon.socket)
    try:
        for args in ({"timeout": 5}, {"timeout": 5, "wait": False}):
            response = request(sock, "worker_drain", args)
            assert response["error"] == {
                "code": "bad_request",
                "message": "worker_drain: 'timeout' is only allowed with 'wait': true",
            }
        assert request(sock, "status")["result"]["workers"]["draining"] is False
        drained = request(sock, "worker_drain", {"timeout": 0, "wait": True})["result"]
        assert drained == {"draining": True, "running": 0}
    finally:
        sock.close()


def test_pausing_a_queue_never_named_creates_it_and_queue_list_shows_it(daemon):
    sock = connect(daemon.socket)
    try:
        paused = request(sock, "queue_pause", {"name": "later"})["result"]
        assert paused["name"] == "later" and paused["paused"] is True
        [queue] = request(sock, "queue_list")["result"]["queues"]
        assert queue["name"] == "later" and queue["paused"] is True
        assert set(queue["jobs"].values()) == {0}
    finally:
        sock.close()


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"command": "true", "priority": 2**63}, "field 'priority' is out of range"),
        ({"command": "true", "priority": -(2**63) - 1}, "field 'priority' is out of range"),
        ({"command": "true", "max_retries": 2**64 - 1}, "field 'max_retries' is out of range"),
        ({"command": "true", "timeout": 2**64}, "field 'timeout' is out of range"),
        ({"command": "true\0rm -rf /"}, "field 'command' must not contain a NUL byte"),
        ({"command": "true", "id": "a\0b"}, "field 'id' must not contain a NUL byte"),
        ({"command": "true", "queue": "q\0"}, "field 'queue' must not contain a NUL byte"),
        ({"command": "true", "unique_key": "\0"}, "field 'unique_key' must not contain a NUL"),
        ({"command": "true", "after": ["x", "y\0"]}, "field 'after' must not contain a NUL"),
        ({"command": "true", "env": {"A\0": "b"}}, "field 'env': variable 'A\\x00' must not"),
        ({"command": "true", "env": {"A": "b\0"}}, "field 'env': variable 'A' must not contain"),
        ({"command": "true", "env": {"": "b"}}, "field 'env' has a variable with an empty name"),
        ({"command": "true", "env": {"A=B": "c"}}, "field 'env': variable name 'A=B' contains '='"),
    ],
)
def test_job_specs_the_operating_system_could_not_run_are_refused(spec, words):
    with pytest.raises(ProtocolError) as caught:
        validate_job_spec(spec)
    assert caught.value.code == ErrorCode.INVALID_JOB
    assert words in caught.value.message


@pytest.mark.parametrize(
    "op, args, words",
    [
        ("enqueue", {"jobs": [{}], "cwd": "work"}, "field 'cwd' must be an absolute path: 'work'"),
        ("enqueue", {"jobs": [{}], "cwd": "./x"}, "must be an absolute path"),
        ("enqueue", {"jobs": [{}], "cwd": "/tmp\0"}, "field 'cwd' must not contain a NUL byte"),
        ("enqueue", {"jobs": [{}], "environ": {"": "x"}}, "'environ' has a variable with an empty"),
        ("enqueue", {"jobs": [{}], "environ": {"A=": "x"}}, "variable name 'A=' contains '='"),
        ("schedule_add", {"name": "n", "cron": "@daily", "job": {}, "cwd": "rel"}, "absolute"),
        ("edit", {"id": "x", "command": "a\0"}, "field 'command' must not contain a NUL byte"),
        ("queue_set", {"name": "q", "on_finish": "a\0"}, "'on_finish' must not contain a NUL"),
        ("queue_set", {"name": "q", "priority": 2**63}, "field 'priority' is out of range"),
        ("config_set", {"key": "k", "value": 2**64 - 1}, "field 'value' is out of range"),
    ],
)
def test_request_arguments_are_checked_like_job_specs(op, args, words):
    with pytest.raises(ProtocolError) as caught:
        parse_request({"id": 2**64 - 1, "op": op, "args": args})
    assert caught.value.code == ErrorCode.BAD_REQUEST
    assert words in caught.value.message


def test_the_whole_signed_64_bit_range_and_an_unsigned_request_id_are_accepted():
    for priority in (-(2**63), 2**63 - 1):
        assert validate_job_spec({"command": "true", "priority": priority})["priority"] == priority
    assert parse_request({"id": 2**64 - 1, "op": "status"})[0] == 2**64 - 1
    assert parse_request({"id": 1, "op": "enqueue", "args": {"jobs": [{}], "cwd": ""}})
