"""Process helpers shared by the supervisor and its workers."""

from __future__ import annotations

import ctypes
import functools
import os
import signal

import psutil

PR_SET_PDEATHSIG = 1
_PROC_STAT = os.path.exists("/proc/self/stat")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to signal this process when its parent dies (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def process_start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch), or None if it is gone.

    Read straight from /proc where there is one: a worker asks this for every
    job it starts, and psutil's general path (a process object, and the boot
    time read again each call) cost more CPU than the rest of the worker's
    bookkeeping for the job. Same formula as psutil: boot time + start ticks.
    """
    if _PROC_STAT:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                data = stat.read()
        except OSError:
            return None
        # The fields after the command name, which may itself hold spaces and ')'.
        fields = data[data.rindex(b")") + 2 :].split()
        return _boot_time() + int(fields[19]) / _CLOCK_TICKS
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


@functools.cache
def _boot_time() -> float:
    return psutil.boot_time()


def is_same_process(pid: int | None, started: float | None) -> bool:
    """True when `pid` is still the process that started at `started` (no pid reuse)."""
    if not pid or started is None:
        return False
    now_started = process_start_time(pid)
    return now_started is not None and abs(now_started - started) < 0.05


def kill_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when nothing is left in it."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(status: int | None) -> str:
    """A Popen returncode in words: negative numbers are signals."""
    if status is None:
        return "unknown status"
    if status < 0:
        return f"killed by {signal_name(-status)}"
    return f"exit status {status}"
