"""Starting the processes a scenario needs, all from this source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence

from bench import SOURCE_ROOT

PYTHON = sys.executable


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with the source tree first on the import path."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SOURCE_ROOT) + (os.pathsep + path if path else "")
    for name in ("QUEUECTL_HOME", "QUEUECTL_SOCKET", "QUEUECTL_NO_AUTOSTART"):
        env.pop(name, None)  # each scenario names its own home explicitly
    env.update(extra)
    return env


def queuectl_argv(home: str, *args: str) -> list[str]:
    """The `queuectl` CLI of this tree, as a user would run it (interpreter start-up included)."""
    return [PYTHON, "-m", "queuectl_client.cli.main", "--home", home, "--no-autostart", *args]


def timed_run(argv: Sequence[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command to completion; return its wall time in seconds and its result."""
    kwargs.setdefault("env", child_env())
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.PIPE)
    started = time.perf_counter()
    result = subprocess.run(list(argv), check=False, **kwargs)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace").strip() if result.stderr else ""
        raise RuntimeError(f"{' '.join(argv[:6])}... exited {result.returncode}: {err[-500:]}")
    return elapsed, result


def shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` counts that differ by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_together(commands: list[list[str]], failure: str) -> float:
    """Seconds from the first start to the last end of load processes run at once.

    Each command waits for a start time it was given, does its work and prints
    "START END" (epoch seconds); `failure` is the error when one exits non-zero.
    """
    procs = [subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE) for argv in commands]
    spans = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(failure)
        spans.append(tuple(float(x) for x in out.split()))
    return max(e for _, e in spans) - min(s for s, _ in spans)


def stop_process(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """Stop a process we started, by its pid: SIGTERM (a graceful stop), a second
    SIGTERM if it lingers (queuectld then interrupts running jobs), SIGKILL last."""
    for _ in range(2):
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    proc.wait()


def compile_sources() -> None:
    """Write bytecode for this tree, as an installed copy has it, so that the start-up
    of the CLI, the daemon and its workers is not spent compiling source."""
    import compileall

    for package in ("protocol", "queuectld", "queuectl_client", "bench"):
        compileall.compile_dir(str(SOURCE_ROOT / package), quiet=1)
