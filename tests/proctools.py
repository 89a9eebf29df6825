"""Process checks shared by the crash, access and soak tests."""

from __future__ import annotations

import os

import psutil


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (already dead, not yet reaped) counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_pids(path) -> list[int]:
    try:
        return [int(x) for x in open(path).read().split()]
    except FileNotFoundError:
        return []


def worker_pids(daemon_pid: int) -> list[int]:
    """Live worker processes of a daemon (an exited worker not yet reaped is left out)."""
    try:
        children = psutil.Process(daemon_pid).children()
    except psutil.Error:
        return []
    pids = []
    for child in children:
        try:
            if "queuectld.fleet.worker" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:  # a zombie has no command line
            pass
    return pids


def zombies_under(pid: int) -> list[int]:
    """Zombie descendants of `pid` (children nobody reaped)."""
    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    out = []
    for proc in tree:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except psutil.Error:
            pass
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss
