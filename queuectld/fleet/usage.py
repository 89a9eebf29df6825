"""CPU time and memory of a running job: its shell and every process under it."""

from __future__ import annotations

import psutil


def tree_usage(pid: int | None) -> dict | None:
    """{"cpu_seconds", "rss_bytes", "processes"} summed over pid and its descendants.

    CPU is user + system time so far (a client turns two readings into a
    percentage); RSS is summed, so pages shared between the processes count
    more than once. None when the process is gone.
    """
    if not pid:
        return None
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    cpu = 0.0
    rss = 0
    alive = 0
    for process in processes:
        try:
            with process.oneshot():
                times = process.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
                rss += process.memory_info().rss
            alive += 1
        except psutil.Error:
            continue  # exited between the listing and the reading
    if not alive:
        return None
    return {"cpu_seconds": round(cpu, 3), "rss_bytes": rss, "processes": alive}
