"""Every request the daemon understands, in one place.

A request is a map {"id": int, "op": str, "args": map}; the response echoes
"id" and carries either {"ok": true, "result": ...} or
{"ok": false, "error": {"code": str, "message": str}}. docs/PROTOCOL.md is the
prose form of this module and must change with it.
"""

from __future__ import annotations

from typing import Any

from protocol.control import CONTROL_OPS
from protocol.errors import ErrorCode, ProtocolError
from protocol.schema import MAX_NAME_BYTES, Field, validate_fields

# Job ids and queue names are names, not payloads.
# About 31 years: beyond it a delay or timeout is a mistake (and not a date).
MAX_SECONDS = 1e9

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
    "env": Field("str_map"),
    "after": Field("str_list"),
    "unique_key": Field("str", nonempty=True, max_bytes=MAX_NAME_BYTES),
}

_PAGE = {"limit": Field("int", minimum=1), "after": Field("int", minimum=0)}

# op name -> argument fields
OPS: dict[str, dict[str, Field]] = {
    "hello": {"client": Field("str"), "protocol": Field("int"), "token": Field("str")},
    "enqueue": {
        "jobs": Field("list", required=True, nonempty=True),
        "cwd": Field("str"),
        "environ": Field("str_map"),
        "on_duplicate": Field("str"),
    },
    "get_job": {"id": Field("str", required=True)},
    "list_jobs": {"state": Field("str"), "queue": Field("str"), **_PAGE},
    "status": {"next": Field("int", minimum=0), "processes": Field("bool")},
    "cancel": {"id": Field("str", required=True)},
    "dlq_list": {"queue": Field("str"), **_PAGE},
    "dlq_retry": {
        "id": Field("str"),
        "all": Field("bool"),
        "queue": Field("str"),
        "since": Field("str", nonempty=True),
    },
    "dlq_purge": {"id": Field("str"), "all": Field("bool")},
    "worker_scale": {"count": Field("int", required=True, minimum=0)},
    "worker_stop": {"now": Field("bool"), "wait": Field("bool")},
    "config_get": {"key": Field("str", required=True)},
    "config_set": {"key": Field("str", required=True), "value": Field("scalar", required=True)},
    "config_list": {},
    "logs": {
        "id": Field("str", required=True),
        "run": Field("int", minimum=1),
        "offset": Field("int", minimum=0),
        "limit": Field("int", minimum=1),
        "wait": Field("number", minimum=0),
    },
    "wait": {
        "ids": Field("str_list", required=True, nonempty=True),
        "timeout": Field("number", minimum=0),
    },
    "shutdown": {"now": Field("bool")},
    **CONTROL_OPS,
    "stats": {"queue": Field("str", nonempty=True)},
    "complete_ids": {
        "prefix": Field("str"),
        "states": Field("str_list"),
        "limit": Field("int", minimum=1),
    },
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


def request(op: str, args: dict | None = None, request_id: int = 0) -> dict:
    return {"id": request_id, "op": op, "args": args or {}}


def ok_response(request_id: Any, result: Any) -> dict:
    return {"id": request_id, "ok": True, "result": result}


def error_response(request_id: Any, error: ProtocolError) -> dict:
    return {"id": request_id, "ok": False, "error": error.to_wire()}
