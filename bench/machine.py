"""The machine the figures were taken on."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys

import psutil


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> list[tuple[str, str]]:
    memory = psutil.virtual_memory().total / 2**30
    return [
        ("cores", str(os.cpu_count())),
        ("CPU", cpu_model()),
        ("memory", f"{memory:.0f} GiB"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("SQLite", sqlite3.sqlite_version),
    ]


def load_average() -> str:
    """The 1-minute load average: anything else running skews the figures."""
    return f"{os.getloadavg()[0]:.2f}"
