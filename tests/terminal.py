"""Run a command with a pseudo-terminal as its stdout or stderr, and read what it drew."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time


def run_on_pty(
    args: list[str],
    env: dict[str, str],
    stream: str = "stdout",
    columns: int = 100,
    rows: int = 30,
    timeout: float = 60,
    cwd: str | None = None,
) -> tuple[int, str, str]:
    """Run `args` with `stream` ("stdout" or "stderr") on a terminal, the other piped.

    Returns (exit code, what reached the terminal, what reached the pipe).
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    other = "stderr" if stream == "stdout" else "stdout"
    proc = subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        **{stream: slave, other: subprocess.PIPE},
    )
    os.close(slave)
    screen = bytearray()
    piped = bytearray()
    pipe_fd = getattr(proc, other).fileno()
    open_fds = {master: screen, pipe_fd: piped}
    deadline = time.monotonic() + timeout
    try:
        # Read both at once (a full pipe would block the command), and until the
        # terminal hangs up (EIO once every holder closed it and the buffer is
        # drained), not merely until the process exits: its last writes may still
        # be on their way through the tty layer at that moment.
        while open_fds and time.monotonic() < deadline:
            ready, _, _ = select.select(list(open_fds), [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: hung up
                    data = b""
                if data:
                    open_fds[fd] += data
                else:
                    del open_fds[fd]
        code = proc.wait(max(1, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, bytes(screen).decode(errors="replace"), bytes(piped).decode(errors="replace")
