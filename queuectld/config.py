"""Settings: names, defaults, ranges and parsers. Values persist in the store.

Every setting has a range: a value a daemon can be told to use must be one it
can act on and answer with (msgpack packs integers of at most 64 bits, and a
kill grace of 1e10 s is a hang, not a choice). The text forms are strict, so
that what `config_set` accepts is what PROTOCOL.md 8.7 says: an integer is
digits with an optional sign (`3.0` is not one), a float is decimal or
exponent notation (`2`, `2.5`, `1e3`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("queuectld.config")

_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")

# /bin/sh -c COMMAND gets the command as one argument, and Linux refuses an
# argument longer than this (MAX_ARG_STRLEN), so no longer command could run.
MAX_ARGUMENT_BYTES = 128 * 1024


def _read_int(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"expected a whole number, got {_clip(text)!r}")
    if len(text) > 100:  # int() of thousands of digits raises its own puzzling error
        raise ValueError(f"{_clip(text)} is out of range")
    return int(text)


def _read_float(text: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise ValueError(f"expected a number, got {_clip(text)!r}")
    return float(text)


def _read_text(text: str) -> str:
    return text


def _clip(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def _show(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return f"{value:.0f}"
    return _clip(f"{value:g}" if isinstance(value, float) else str(value))


@dataclass(frozen=True)
class Setting:
    """One setting: how its text reads, the range it must fall in, its default.

    For a string the range bounds its length in UTF-8 bytes.
    """

    read: Callable[[str], Any]
    minimum: float
    maximum: float
    default: Any
    help: str

    @property
    def range(self) -> str:
        return f"{_show(self.minimum)} to {_show(self.maximum)}"

    def check(self, value: Any) -> Any:
        if isinstance(value, str):
            if len(value.encode()) > self.maximum:
                raise ValueError(f"must be at most {_show(self.maximum)} bytes long")
            return value
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"{_show(value)} is out of range ({self.range})")
        return value

    def parse(self, text: str) -> Any:
        """The value of a text form; ValueError says what is wrong with it."""
        return self.check(self.read(str(text).strip()))


def _int(minimum: int, maximum: int, default: int, help: str) -> Setting:
    return Setting(_read_int, minimum, maximum, default, help)


def _float(minimum: float, maximum: float, default: float, help: str) -> Setting:
    return Setting(_read_float, minimum, maximum, default, help)


DAY = 24 * 3600.0
MIB = 1024 * 1024

# Most workers a `workers` value may ask for; the fleet's own maximum, at most
# this, is the daemon's (fleet/supervisor.py, `queuectld --max-workers`).
WORKERS_CEILING = 10_000

SETTINGS: dict[str, Setting] = {
    "max-retries": _int(0, 1000, 3, "retries after the first attempt, for jobs that do not say"),
    "backoff-base": _float(1.0, 100.0, 2.0, "retry k waits backoff-base ** k seconds"),
    "backoff-max": _float(0.0, 30 * DAY, 3600.0, "upper bound of one backoff wait, in seconds"),
    # As long as a job spec's own timeout may be (protocol/messages.py).
    "job-timeout": _float(0.0, 1e9, 0.0, "default timeout of a job in seconds (0: none)"),
    "kill-grace": _float(0.0, 3600.0, 5.0, "seconds between SIGTERM and SIGKILL of a job"),
    "log-max-bytes": _int(0, 1024**4, 10 * MIB, "cap on one run's captured output (0: none)"),
    "workers": _int(0, WORKERS_CEILING, 1, "size of the worker fleet"),
    "max-batch": _int(1, 1_000_000, 100_000, "most jobs in one enqueue request"),
    "max-command-bytes": _int(1, MAX_ARGUMENT_BYTES, 128 * 1024, "longest accepted command"),
    # The environment and the arguments of an exec share ARG_MAX, usually 2 MiB.
    "max-env-bytes": _int(
        1, 2 * MIB, 256 * 1024, "largest accepted environment of one job (and of its submitter)"
    ),
    # What clients can make the daemon keep (network/limits.py): each is a row
    # or a waiting request that costs memory, store reads or polling.
    "max-schedules": _int(1, 100_000, 1000, "most schedules kept"),
    "max-queues": _int(1, 100_000, 1000, "most queues with settings of their own"),
    "max-waits": _int(1, 100_000, 1000, "most wait requests waiting at once"),
    "max-log-follows": _int(
        1, 10_000, 64, "most logs requests with a wait (logs -f) waiting at once"
    ),
    # Limits on clients (see server.py): read when a connection opens.
    "max-connections": _int(1, 10_000, 256, "most client connections served at once"),
    "max-frame-bytes": _int(1024, 64 * MIB, 8 * MIB, "largest accepted request frame"),
    "client-timeout": _float(
        0.1, DAY, 60.0, "seconds a client may take to send a request or to read an answer"
    ),
    # Retention (see retention.py): completed and canceled jobs only; the DLQ is kept.
    "retention-age": _float(
        0.0, 3650 * DAY, 7 * DAY, "prune finished jobs older than this, in seconds (0: never)"
    ),
    "retention-count": _int(
        0, 10**9, 100_000, "keep at most this many finished jobs, newest first (0: no limit)"
    ),
    "on-finish": Setting(
        _read_text,
        0,
        MAX_ARGUMENT_BYTES,
        "",
        "shell command run after a job ends, for queues without their own (empty: none)",
    ),
}


# Settings each daemon of a shared store keeps for itself: they size or bound its
# own fleet and its own clients. Every other setting is the cluster's: one value,
# in the store, for every daemon. On a shared store a daemon keeps its own under
# `stored_key`'s name, so that a restart finds its own value and not another's.
PER_DAEMON = frozenset(
    {
        "workers",
        "kill-grace",
        "max-waits",
        "max-log-follows",
        "max-connections",
        "max-frame-bytes",
        "client-timeout",
    }
)


def scope(key: str) -> str:
    """`daemon` for a setting each daemon keeps for itself, else `cluster`."""
    return "daemon" if key in PER_DAEMON else "cluster"


def stored_key(key: str, daemon: str | None) -> str:
    """The name a setting is stored under: a per-daemon setting of a daemon on a
    shared store (`daemon` given) under its own, `KEY@DAEMON-ID`."""
    return f"{key}@{daemon}" if daemon is not None and key in PER_DAEMON else key


def _as_seen_by(stored: dict[str, str], daemon: str | None) -> dict[str, str]:
    """The store's settings as this daemon takes them: its own per-daemon values
    over the plain ones (stored before it had its own, or by a store of one daemon),
    and none of the other daemons'."""
    seen = {key: value for key, value in stored.items() if "@" not in key}
    if daemon is not None:
        for key in PER_DAEMON:
            if stored_key(key, daemon) in stored:
                seen[key] = stored[stored_key(key, daemon)]
    return seen


def check_hook(command: str) -> str:
    """A queue's `on_finish` is bounded like the `on-finish` setting: both run as `sh -c`."""
    return SETTINGS["on-finish"].check(command)


class Config:
    """Current values, parsed; the raw strings are what the store keeps.

    `sources` says, for a setting whose value in force is not the one stored,
    where the value in force came from (a daemon option, a default standing in
    for a stored value this release refuses); `config_get` shows it.
    """

    def __init__(self, stored: dict[str, str], daemon: str | None = None):
        stored = _as_seen_by(stored, daemon)
        self.values: dict[str, Any] = {k: s.default for k, s in SETTINGS.items()}
        self.sources: dict[str, str] = {}
        # Set by a daemon option or a limit of this host (see override): re-reading
        # the store leaves them alone.
        self._overridden: set[str] = set()
        for key, raw in stored.items():
            if key not in SETTINGS:
                continue
            try:
                self.values[key] = SETTINGS[key].parse(raw)
            except ValueError as exc:
                # Stored by an older release, or by hand: the daemon must still
                # start and answer, so the default stands in, and says so.
                self.sources[key] = "the default; the stored value is refused"
                log.warning(
                    "setting %s: stored value %.40r %s; using the default %s",
                    key,
                    raw,
                    exc,
                    SETTINGS[key].default,
                    extra={"event": "config_refused", "key": key},
                )

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def set(self, key: str, value: Any) -> None:
        """A value already parsed (see `parse`) and stored takes effect in this daemon."""
        if key not in SETTINGS:
            raise KeyError(key)
        self.values[key] = value
        self.sources.pop(key, None)
        self._overridden.discard(key)

    def override(self, key: str, value: Any, source: str) -> None:
        """A value in force in this daemon only, not stored; `source` says why."""
        self.values[key] = value
        self.sources[key] = source
        self._overridden.add(key)

    def reload(self, stored: dict[str, str], keep: frozenset[str] = frozenset()) -> None:
        """Take the store's values again (another daemon of a shared store changed
        them), except the settings in `keep` and those a daemon option or a limit of
        this host set."""
        stored = _as_seen_by(stored, None)
        fresh = Config({k: v for k, v in stored.items() if k not in keep | self._overridden})
        for key in SETTINGS.keys() - keep - self._overridden:
            self.values[key] = fresh.values[key]
            if key in fresh.sources:
                self.sources[key] = fresh.sources[key]
            else:
                self.sources.pop(key, None)

    def backoff(self, failures: int) -> float:
        """Wait before retry number `failures` (1-based)."""
        try:
            wait = self["backoff-base"] ** failures
        except OverflowError:
            wait = float("inf")
        return min(wait, self["backoff-max"])


def settle_in_force(
    config: Config,
    workers_override: int | None,
    maximum: int,
    connection_room: Callable[[int], tuple[int, int] | None],
) -> None:
    """`--workers` wins over the stored size, and neither may pass the fleet
    maximum: a size stored before there was one is cut down to it, once per
    start, with a warning, rather than forking workers until memory runs out.
    Connections are cut down likewise to what the open-file limit allows with that
    many workers (`connection_room(workers)`: the limit, and the connections it
    leaves room for)."""
    if workers_override is not None and workers_override != config["workers"]:
        config.override("workers", workers_override, "--workers")
    if config["workers"] > maximum:
        log.warning(
            "the stored fleet size %d is more than the fleet maximum %d; starting %d "
            "(queuectld --max-workers raises the maximum)",
            config["workers"],
            maximum,
            maximum,
            extra={"event": "workers_clamped", "stored": config["workers"], "max": maximum},
        )
        config.override("workers", maximum, "the fleet maximum; the stored value is larger")
    room = connection_room(config["workers"])
    if room is not None and config["max-connections"] > room[1]:
        log.warning(
            "max-connections %d is more than the open-file limit (%d) leaves room for; "
            "serving at most %d connections",
            config["max-connections"],
            room[0],
            room[1],
            extra={"event": "connections_clamped", "files": room[0], "max": room[1]},
        )
        config.override("max-connections", room[1], "the open-file limit (ulimit -n)")
