"""Stable, machine-readable error codes carried in error responses."""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    BAD_REQUEST = "bad_request"  # malformed request: wrong types, unknown fields, bad frame
    UNKNOWN_OP = "unknown_op"
    INVALID_JOB = "invalid_job"  # a job spec that fails validation
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # duplicate id, or an operation the job's state forbids
    TOO_LARGE = "too_large"  # a frame, batch, command or env beyond a configured limit
    UNAUTHORIZED = "unauthorized"
    UNAVAILABLE = "unavailable"  # the store cannot serve the request right now (locked, disk full)
    SHUTTING_DOWN = "shutting_down"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """An error that travels to the peer as an error response."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message

    def to_wire(self) -> dict:
        return {"code": self.code.value, "message": self.message}

    @classmethod
    def from_wire(cls, error: dict) -> ProtocolError:
        code = error.get("code", "internal")
        try:
            code = ErrorCode(code)
        except ValueError:
            code = ErrorCode.INTERNAL
        return cls(code, str(error.get("message", "")))
