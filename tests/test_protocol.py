"""The wire format: framing limits and request validation on their own, then
the cases PROTOCOL.md pins down, in raw frames against a running daemon."""

from __future__ import annotations

import socket
import struct

import msgpack
import pytest

from protocol import ErrorCode, FrameDecoder, FrameError, ProtocolError, pack_frame
from protocol.messages import parse_request, validate_job_spec
from protocol.times import parse_iso, to_iso
from tests.rawwire import connect, frame, raw_frame, read_responses


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
