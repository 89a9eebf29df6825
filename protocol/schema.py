"""A small declarative validator for request arguments and job specs.

Kept tiny on purpose: every field is a name, a kind and a flag for required.
Errors name the field so a person (or another program) can fix the request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from protocol.errors import ErrorCode, ProtocolError

INT64_MAX = 2**63 - 1
# Longest job id, queue name, unique key or schedule name, in UTF-8 bytes.
MAX_NAME_BYTES = 256


@dataclass(frozen=True)
class Field:
    kind: str  # str | int | number | bool | str_map | list | map | str_list | scalar | any
    required: bool = False
    minimum: float | None = None
    nonempty: bool = False
    max_bytes: int | None = None  # for str: longest accepted value, UTF-8 encoded
    maximum: float | None = None


def _kind_ok(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        # NaN and infinities are not numbers a schedule or a timeout can use.
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (math.isfinite(value))
        )
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "scalar":
        return isinstance(value, (str, int, float))
    if kind == "list":
        return isinstance(value, list)
    if kind == "map":
        return isinstance(value, dict)
    if kind == "str_list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "str_map":
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    raise ValueError(f"unknown field kind {kind!r}")


_KIND_NAMES = {
    "str": "a string",
    "int": "an integer",
    "number": "a finite number",
    "bool": "a boolean",
    "list": "an array",
    "map": "a map",
    "str_list": "an array of strings",
    "str_map": "a map of string to string",
    "scalar": "a string, number or boolean",
}


def validate_fields(
    values: Any, fields: dict[str, Field], what: str, code: ErrorCode = ErrorCode.BAD_REQUEST
) -> dict[str, Any]:
    """Check `values` against `fields`; return it unchanged or raise ProtocolError."""
    if not isinstance(values, dict):
        raise ProtocolError(code, f"{what} must be a map")
    for name in values:
        if name not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ProtocolError(code, f"{what}: unknown field {name!r} (known fields: {known})")
    for name, field in fields.items():
        if name not in values or values[name] is None:
            if field.required:
                raise ProtocolError(code, f"{what}: missing required field {name!r}")
            continue
        value = values[name]
        if not _kind_ok(field.kind, value):
            raise ProtocolError(code, f"{what}: field {name!r} must be {_KIND_NAMES[field.kind]}")
        if field.nonempty and isinstance(value, (str, list, dict)) and not value:
            raise ProtocolError(code, f"{what}: field {name!r} must not be empty")
        if field.minimum is not None and value < field.minimum:
            raise ProtocolError(code, f"{what}: field {name!r} must be >= {field.minimum:g}")
        if field.maximum is not None and value > field.maximum:
            raise ProtocolError(code, f"{what}: field {name!r} must be <= {field.maximum:g}")
        if field.kind == "int" and abs(value) > INT64_MAX:
            raise ProtocolError(code, f"{what}: field {name!r} is out of range")
        if field.max_bytes is not None and len(value.encode("utf-8", "surrogatepass")) > (
            field.max_bytes
        ):
            raise ProtocolError(
                code, f"{what}: field {name!r} is longer than {field.max_bytes} bytes"
            )
    return values
