"""The wire format on its own: framing limits and request validation."""

from __future__ import annotations

import struct

import msgpack
import pytest

from protocol import ErrorCode, FrameDecoder, FrameError, ProtocolError, pack_frame
from protocol.messages import parse_request, validate_job_spec
from protocol.times import parse_iso, to_iso


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
