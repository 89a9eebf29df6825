"""Random and mutated frames thrown at a live daemon (property-based).

After every example the daemon must still answer `status` correctly on another
connection, and must have lost no job. The short run is part of the default
suite; the long one is marked slow (`pytest -m slow`).
"""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.errors import ErrorCode
from tests.proctools import open_fds
from tests.rawwire import connect, read_responses

# Ops that cannot stop the daemon or change what the test checks.
SAFE_OPS = ["hello", "status", "get_job", "list_jobs", "dlq_list", "config_get", "enqueue", "logs"]
CODES = {code.value for code in ErrorCode}

# Every integer msgpack can carry.
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = (
    st.none() | st.booleans() | ints | st.floats() | st.text(max_size=40) | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=10) | ints, inner, max_size=5)
    ),
    max_leaves=30,
)
job_specs = st.fixed_dictionaries(
    {"command": st.sampled_from(["true", "", "x" * 300]) | values},
    optional={
        "id": st.text(max_size=20) | values,
        "priority": ints | values,
        "delay": st.floats() | values,
        "env": st.dictionaries(st.text(max_size=5), st.text(max_size=5)) | values,
        "queue": values,
    },
)
requests = st.fixed_dictionaries(
    {"op": st.sampled_from(SAFE_OPS) | st.text(max_size=12) | values},
    optional={
        "id": ints | values,
        "args": st.dictionaries(
            st.sampled_from(["id", "jobs", "limit", "state", "key", "after", "run", "x"]),
            values | st.lists(job_specs, max_size=3),
            max_size=3,
        )
        | values,
        "junk": values,
    },
)


def pack(value) -> bytes:
    body = msgpack.packb(value, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.lists(requests.map(pack), min_size=1, max_size=3).map(b"".join)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[0:4] = struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
    return bytes(data)


frames = st.one_of(
    st.binary(max_size=300),
    values.map(pack),
    requests.map(pack),
    mutated(),
)


def throw(daemon, data: bytes) -> None:
    sock = connect(daemon.socket)
    try:
        try:
            sock.sendall(data)
            sock.shutdown(2 - 1)  # SHUT_WR: the daemon sees the end of our requests
        except (BrokenPipeError, ConnectionResetError):
            pass
        responses, closed = read_responses(sock, timeout=10)
    finally:
        sock.close()
    assert closed, f"the daemon kept the connection open after {data[:40]!r}"
    for response in responses:
        assert set(response) <= {"id", "ok", "result", "error", "closing"}
        if "closing" in response:  # only the last frame may end the connection
            assert response["closing"] is True and response is responses[-1]
        if not response["ok"]:
            assert response["error"]["code"] in CODES
            assert response["error"]["code"] != "internal", response


def check_alive(daemon, baseline: set[str]) -> None:
    with daemon.client() as client:
        status = client.status()
        assert status["daemon"]["pid"] == daemon.pid
        ids = {job["id"] for job in client.list_jobs()}
    assert baseline <= ids, f"lost jobs: {sorted(baseline - ids)[:5]}"
    assert sum(status["jobs"].values()) == len(ids)


def run_fuzz(daemon, examples: int) -> None:
    with daemon.client() as client:
        client.config_set("client-timeout", "5")
        client.config_set("max-frame-bytes", "65536")
        baseline = set(client.enqueue(*({"id": f"keep{i}", "command": "true"} for i in range(20))))
    fds_before = open_fds(daemon.pid)

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(data=frames)
    def property(data: bytes) -> None:
        throw(daemon, data)
        check_alive(daemon, baseline)

    property()
    # Every connection the fuzzer opened is closed again.
    assert open_fds(daemon.pid) <= fds_before + 2


def test_random_and_mutated_frames_never_hurt_the_daemon(daemon):
    run_fuzz(daemon, examples=500)


@pytest.mark.slow
def test_random_and_mutated_frames_never_hurt_the_daemon_long(daemon):
    run_fuzz(daemon, examples=5000)
