"""Find and kill what is left of a job run whose supervisor is gone.

A run is recognised three ways, each safe against a reused pid:
- its shell, by the pid and the process start time recorded when it started;
- the shell's process group, but only while the shell itself is that process or
  no process with that pid exists any more (then nothing else can have made a
  group with that id: the kernel does not hand out a pid still used as a group id);
- any process, in any group or session, whose environment carries the run's
  marker variable and that started no earlier than the run.
The third also covers a run whose pid never reached the store (the daemon died
between spawning the job and recording it).
"""

from __future__ import annotations

import os
import signal
import time

import psutil

from queuectld.fleet.procutil import is_same_process, kill_group

RUN_MARKER = "QUEUECTL_RUN"
# Process start times come from /proc in clock ticks: allow for the rounding.
START_SLACK = 1.0


def run_marker(instance: str, seq: int, run: int) -> str:
    """The value of RUN_MARKER for one run; unique across data homes and runs."""
    return f"{instance}:{seq}:{run}"


def find_run_processes(
    marker: str | None, pid: int | None, pid_started: float | None, since: float | None
) -> list[psutil.Process]:
    """Every live process that belongs to the run (zombies excluded)."""
    found: dict[int, psutil.Process] = {}
    shell_alive = is_same_process(pid, pid_started)
    if shell_alive and pid:
        try:
            found[pid] = psutil.Process(pid)
        except psutil.Error:
            shell_alive = False
    group_is_ours = bool(pid) and (shell_alive or not psutil.pid_exists(pid))
    earliest = (since or 0.0) - START_SLACK
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid in found or proc.pid == me:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.create_time() < earliest:
                continue
            if group_is_ours and os.getpgid(proc.pid) == pid:
                found[proc.pid] = proc
            elif marker and proc.environ().get(RUN_MARKER) == marker:
                found[proc.pid] = proc
        except (psutil.Error, OSError):
            continue
    return list(found.values())


def kill_run(
    marker: str | None,
    pid: int | None,
    pid_started: float | None,
    since: float | None,
    wait: float = 0.0,
) -> list[int]:
    """SIGKILL every process of the run; return their pids.

    A process that has been sent SIGKILL never runs another instruction of its
    own, so callers need not wait for correctness; `wait` only lets the caller
    report that they are gone.
    """
    victims = find_run_processes(marker, pid, pid_started, since)
    if pid and (is_same_process(pid, pid_started) or not psutil.pid_exists(pid)):
        kill_group(pid, signal.SIGKILL)
    for proc in victims:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    deadline = time.monotonic() + wait
    while wait and time.monotonic() < deadline:
        if not any(_alive(p) for p in victims):
            break
        time.sleep(0.02)
    return [p.pid for p in victims]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
