"""The checks of a request, the job spec and the job states.

The envelope itself (how a request and a response are built) is in
protocol/envelope.py; the ops and their arguments are in protocol/ops.py.
docs/PROTOCOL.md is the prose form of all three and must change with them.
"""

from __future__ import annotations

from typing import Any

from protocol.errors import ErrorCode, ProtocolError
from protocol.ops import OPS
from protocol.schema import MAX_NAME_BYTES, MAX_SECONDS, Field, validate_fields

# Job states, defined once: everything else (SQL fragments, validation, the CLI's
# choices) is built from these. `failed` means "waiting for its retry".
WAITING_STATES = ("pending", "failed")  # may be claimed once due
RUNNING_STATES = ("processing",)
LIVE_STATES = WAITING_STATES + RUNNING_STATES  # not finished: holds its unique key
TERMINAL_STATES = ("completed", "dead", "canceled")  # finished: only a user moves it on
JOB_STATES = ("pending", "processing", "completed", "failed", "dead", "canceled")
assert sorted(JOB_STATES) == sorted(LIVE_STATES + TERMINAL_STATES)

# The fields a job spec may carry (JSON on the CLI, a msgpack map on the wire).
JOB_SPEC_FIELDS: dict[str, Field] = {
    "id": Field("str", nonempty=True, max_bytes=MAX_NAME_BYTES),
    "command": Field("str", required=True, nonempty=True),
    "max_retries": Field("int", minimum=0),
    "priority": Field("int"),
    "run_at": Field("str", nonempty=True, max_bytes=64),
    "delay": Field("number", minimum=0, maximum=MAX_SECONDS),
    "timeout": Field("number", minimum=0, maximum=MAX_SECONDS),
    "queue": Field("str", nonempty=True, max_bytes=MAX_NAME_BYTES),
    "env": Field("str_map", environment=True),
    "after": Field("str_list"),
    "unique_key": Field("str", nonempty=True, max_bytes=MAX_NAME_BYTES),
}


def parse_request(message: dict) -> tuple[Any, str, dict]:
    """Split a decoded request into (request id, op, validated args)."""
    request_id = message.get("id")
    for name in message:
        if name not in ("id", "op", "args"):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"request: unknown field {name!r}")
    if request_id is not None and (not isinstance(request_id, int) or isinstance(request_id, bool)):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "request: field 'id' must be an integer")
    op = message.get("op")
    if not isinstance(op, str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "request: field 'op' must be a string")
    if op not in OPS:
        raise ProtocolError(ErrorCode.UNKNOWN_OP, f"unknown op {op!r}")
    args = message.get("args", {})
    if args is None:
        args = {}
    validate_fields(args, OPS[op], op)
    # nil means "not given": handlers then apply their defaults instead of seeing None.
    return request_id, op, {k: v for k, v in args.items() if v is not None}


def validate_job_spec(spec: Any, index: int | None = None) -> dict:
    what = "job" if index is None else f"job #{index + 1}"
    validate_fields(spec, JOB_SPEC_FIELDS, what, ErrorCode.INVALID_JOB)
    if spec.get("run_at") is not None and spec.get("delay") is not None:
        raise ProtocolError(ErrorCode.INVALID_JOB, f"{what}: give 'run_at' or 'delay', not both")
    # A null field means "use the default", as the validator already treats it.
    return {name: value for name, value in spec.items() if value is not None}
