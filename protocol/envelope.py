"""The request and response envelope.

A request is a map {"id": int, "op": str, "args": map}; the response echoes
"id" and carries either {"ok": true, "result": ...} or
{"ok": false, "error": {"code": str, "message": str}}.

Apart from protocol/messages.py (the checks of a request, the job spec and the
states) so that a client builds its requests without loading the op table and
its validator: the CLI starts for every command.
"""

from __future__ import annotations

from typing import Any

from protocol.errors import ProtocolError


def request(op: str, args: dict | None = None, request_id: int = 0) -> dict:
    return {"id": request_id, "op": op, "args": args or {}}


def ok_response(request_id: Any, result: Any) -> dict:
    return {"id": request_id, "ok": True, "result": result}


def error_response(request_id: Any, error: ProtocolError, closing: bool = False) -> dict:
    """`closing` marks the last frame of a connection, which a client cannot tell
    from an answer by its id alone: both may carry a nil id."""
    response = {"id": request_id, "ok": False, "error": error.to_wire()}
    if closing:
        response["closing"] = True
    return response
