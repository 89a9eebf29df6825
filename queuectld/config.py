"""Settings: names, defaults and parsers. Values persist in the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol.schema import INT64_MAX


def _int(minimum: int, maximum: int = INT64_MAX) -> Callable[[str], int]:
    # Without a maximum of its own, a whole number is one the store and the
    # protocol can carry: a larger max-retries would make every enqueue fail.
    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        if value > maximum:
            raise ValueError(f"must be at most {maximum}")
        return value

    return parse


def _number(minimum: float, above: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        if value < minimum or (above and value == minimum):
            raise ValueError(f"must be {'above' if above else 'at least'} {minimum:g}")
        return value

    return parse


def _text(text: str) -> str:
    return str(text).strip()


@dataclass(frozen=True)
class Setting:
    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: dict[str, Setting] = {
    "max-retries": Setting(_int(0), 3, "retries after the first attempt, for jobs that do not say"),
    "backoff-base": Setting(_number(1.0), 2.0, "retry k waits backoff-base ** k seconds"),
    "backoff-max": Setting(_number(0.0), 3600.0, "upper bound of one backoff wait, in seconds"),
    "job-timeout": Setting(_number(0.0), 0.0, "default timeout of a job in seconds (0: none)"),
    "kill-grace": Setting(_number(0.0), 5.0, "seconds between SIGTERM and SIGKILL of a job"),
    "log-max-bytes": Setting(
        _int(0), 10 * 1024 * 1024, "cap on one run's captured output (0: none)"
    ),
    "workers": Setting(_int(0), 1, "size of the worker fleet"),
    "max-batch": Setting(_int(1), 100_000, "most jobs in one enqueue request"),
    "max-command-bytes": Setting(_int(1), 128 * 1024, "longest accepted command"),
    "max-env-bytes": Setting(
        _int(1), 256 * 1024, "largest accepted environment of one job (and of its submitter)"
    ),
    # Limits on clients (see server.py): read when a connection opens.
    "max-connections": Setting(_int(1), 256, "most client connections served at once"),
    "max-frame-bytes": Setting(
        _int(1024, 64 * 1024 * 1024), 8 * 1024 * 1024, "largest accepted request frame"
    ),
    "client-timeout": Setting(
        _number(0.0, above=True),
        60.0,
        "seconds a client may take to send a request or to read an answer",
    ),
    # Retention (see retention.py): completed and canceled jobs only; the DLQ is kept.
    "retention-age": Setting(
        _number(0.0), 7 * 24 * 3600.0, "prune finished jobs older than this, in seconds (0: never)"
    ),
    "retention-count": Setting(
        _int(0), 100_000, "keep at most this many finished jobs, newest first (0: no limit)"
    ),
    "on-finish": Setting(
        _text, "", "shell command run after a job ends, for queues without their own (empty: none)"
    ),
}


class Config:
    """Current values, parsed; the raw strings are what the store keeps."""

    def __init__(self, stored: dict[str, str]):
        self.values: dict[str, Any] = {k: s.default for k, s in SETTINGS.items()}
        for key, raw in stored.items():
            if key in SETTINGS:
                try:
                    self.values[key] = SETTINGS[key].parse(raw)
                except ValueError:
                    pass  # a hand-edited bad value falls back to the default

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def set(self, key: str, value: Any) -> None:
        """A value already parsed (see `parse`) and stored takes effect in this daemon."""
        if key not in SETTINGS:
            raise KeyError(key)
        self.values[key] = value

    @staticmethod
    def parse(key: str, raw: Any) -> Any:
        """Validate one value; raise KeyError for an unknown key, ValueError for a bad value."""
        if key not in SETTINGS:
            raise KeyError(key)
        return SETTINGS[key].parse(str(raw))

    def backoff(self, failures: int) -> float:
        """Wait before retry number `failures` (1-based)."""
        try:
            wait = self["backoff-base"] ** failures
        except OverflowError:
            wait = float("inf")
        return min(wait, self["backoff-max"])
