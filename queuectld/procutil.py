"""Process helpers shared by the supervisor and its workers."""

from __future__ import annotations

import ctypes
import os
import signal

import psutil

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to signal this process when its parent dies (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


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
