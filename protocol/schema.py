"""A small declarative validator for request arguments and job specs.

Kept tiny on purpose: every field is a name, a kind and a flag for required.
Errors name the field so a person (or another program) can fix the request.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol.errors import ErrorCode, ProtocolError

# Every integer a request carries is a signed 64-bit one: what the store keeps,
# and what clients in other languages hold without loss.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Longest job id, queue name, unique key or schedule name, in UTF-8 bytes.
MAX_NAME_BYTES = 256
# About 31 years: beyond it a delay or timeout is a mistake (and not a date).
MAX_SECONDS = 1e9


@dataclass(frozen=True)
class Field:
    kind: str  # str | int | number | bool | str_map | list | map | str_list | scalar | any
    required: bool = False
    minimum: float | None = None
    nonempty: bool = False
    max_bytes: int | None = None  # for str: longest accepted value, UTF-8 encoded
    maximum: float | None = None
    # str_map: the names and values of environment variables (no name is empty or has '=').
    environment: bool = False
    # str: an absolute path (a relative one would depend on the worker's last directory).
    absolute: bool = False


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
        if out_of_range(value):
            raise ProtocolError(code, f"{what}: field {name!r} {OUT_OF_RANGE}")
        _check_text(value, field, f"{what}: field {name!r}", code)
        if field.nonempty and isinstance(value, (str, list, dict)) and not value:
            raise ProtocolError(code, f"{what}: field {name!r} must not be empty")
        if field.minimum is not None and value < field.minimum:
            raise ProtocolError(code, f"{what}: field {name!r} must be >= {field.minimum:g}")
        if field.maximum is not None and value > field.maximum:
            raise ProtocolError(code, f"{what}: field {name!r} must be <= {field.maximum:g}")
        if field.absolute and value and not value.startswith("/"):
            raise ProtocolError(code, f"{what}: field {name!r} must be an absolute path: {value!r}")
        if field.max_bytes is not None and len(value.encode("utf-8", "surrogatepass")) > (
            field.max_bytes
        ):
            raise ProtocolError(
                code, f"{what}: field {name!r} is longer than {field.max_bytes} bytes"
            )
    return values


OUT_OF_RANGE = f"is out of range: integers must be from {INT64_MIN} to {INT64_MAX}"


def out_of_range(value: Any) -> bool:
    """An integer beyond signed 64 bits (booleans are ints to Python, and in range)."""
    return isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX


def find_value(value: Any, wanted: Callable[[Any], bool], path: str = "") -> str | None:
    """The path (`jobs[0].priority`) of the first value, at any depth of maps and
    arrays, for which `wanted` is true; None when there is none."""
    if wanted(value):
        return path
    if isinstance(value, dict):
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{i}]", item) for i, item in enumerate(value))
    else:
        return None
    for item_path, item in items:
        found = find_value(item, wanted, item_path)
        if found is not None:
            return found
    return None


def _check_text(value: Any, field: Field, what: str, code: ErrorCode) -> None:
    """No string reaches a command line, an environment, a path or a name with a
    NUL in it: the operating system cannot take one, and would refuse the job only
    when it runs."""
    if isinstance(value, str):
        if "\0" in value:
            raise ProtocolError(code, f"{what} must not contain a NUL byte")
    elif isinstance(value, list):
        if any(isinstance(item, str) and "\0" in item for item in value):
            raise ProtocolError(code, f"{what} must not contain a NUL byte")
    elif isinstance(value, dict) and field.kind == "str_map":
        # Every request carries an environment of dozens of variables: look at all
        # of them joined, and one by one only to name the culprit.
        names = "".join(value)
        if "\0" not in names and "\0" not in "".join(value.values()):
            if not field.environment or ("" not in value and "=" not in names):
                return
        for key, item in value.items():
            if "\0" in key or "\0" in item:
                raise ProtocolError(code, f"{what}: variable {key!r} must not contain a NUL byte")
            if field.environment and not key:
                raise ProtocolError(code, f"{what} has a variable with an empty name")
            if field.environment and "=" in key:
                raise ProtocolError(code, f"{what}: variable name {key!r} contains '='")
