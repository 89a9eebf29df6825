"""The task the Python peers run: one shell command, like a queuectl job."""

from __future__ import annotations

import subprocess


def run_shell(command: str) -> bool:
    subprocess.run(["/bin/sh", "-c", command], check=False)
    return True
