"""A worker process: runs one job at a time for the supervisor.

The conversation with the supervisor is in fleet/messages.py: `run`, `kill`
and `stop` come in; `ready` goes out once, then for each run `started` (once it
has lasted START_REPORT_DELAY) and `done`. The worker never touches the store.
If the supervisor goes away (socket EOF, or the parent-death signal) the worker
kills its job's process group and exits, so no job outlives the daemon
unsupervised.
"""

from __future__ import annotations

import os
import pwd
import selectors
import signal
import socket
import subprocess
import sys
import time

from protocol.framing import FrameDecoder, pack_frame
from queuectld.fleet import messages
from queuectld.fleet.procutil import die_with_parent, kill_group, process_start_time, signal_name

READ_CHUNK = 65536
# A run still going after this long is reported as started (with its pid); a
# shorter one reports its pid with its end, saving a message each way per job.
START_REPORT_DELAY = 0.01
TRUNCATED = "\n[queuectl: output truncated at {} bytes]\n"


class SupervisorGone(Exception):
    pass


class Channel:
    """Framed messages over the socketpair to the supervisor."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.decoder = FrameDecoder()
        self.inbox: list[dict] = []

    def send(self, message: dict) -> None:
        try:
            self.sock.sendall(pack_frame(message))
        except OSError:
            raise SupervisorGone() from None

    def receive_ready(self) -> None:
        """Read what is available (the socket was reported readable)."""
        data = self.sock.recv(READ_CHUNK)
        if not data:
            raise SupervisorGone()
        self.inbox.extend(self.decoder.feed(data))

    def next_message(self) -> dict:
        while not self.inbox:
            self.receive_ready()
        return self.inbox.pop(0)


class LogWriter:
    """Appends a run's output to its log file, created on first output, capped in size.

    Output is a by-product: when the log cannot be written (disk full, read-only
    data home) the job keeps running, its output is drained and dropped, and
    the reason is reported with the run instead of failing it.
    """

    def __init__(self, path: str, cap: int):
        self.path = path
        self.cap = cap
        self.written = 0
        self.file = None
        self.truncated = False
        self.error: str | None = None

    def write(self, data: bytes) -> None:
        if self.truncated or self.error is not None:
            return
        try:
            if self.file is None:
                os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
                self.file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
            room = self.cap - self.written if self.cap else len(data)
            if room < len(data):
                self.file.write(data[:room])
                self.file.write(TRUNCATED.format(self.cap).encode())
                self.written += room
                self.truncated = True
                return
            self.file.write(data)
            self.written += len(data)
        except OSError as exc:
            self.error = f"output not captured: {exc.strerror or exc}"

    def close(self) -> str | None:
        if self.file is None:
            return None
        try:
            self.file.close()
        except OSError as exc:
            self.error = self.error or f"output not captured: {exc.strerror or exc}"
        return self.path


class JobRun:
    """One attempt of one job: spawn, capture, time out, kill, report."""

    def __init__(self, channel: Channel, spec: dict, selector: selectors.BaseSelector):
        self.channel = channel
        self.spec = spec
        self.selector = selector  # the worker's, with the channel already registered
        self.log = LogWriter(spec["log"], spec.get("log_max", 0))
        self.kill_reason: str | None = None
        self.timed_out = False
        self.term_sent_at: float | None = None
        # Seconds from SIGTERM to SIGKILL; a kill message may shorten it.
        self.grace: float = spec.get("grace", 5.0)
        self.stop_after = False
        self.pid: int | None = None
        self.start_reported = False
        self.report_start_at = 0.0

    def execute(self) -> None:
        spec = self.spec
        read_fd, write_fd = os.pipe()
        try:
            child = spawn(spec, write_fd)
        except Exception as exc:
            # Whatever keeps a job from starting (a directory gone, a user that
            # cannot be switched to, a value exec refuses) is this job's failure,
            # said in its error; a worker dying of it would say only that it died.
            os.close(read_fd)
            os.close(write_fd)
            self.channel.send(
                messages.done("spawn_error", f"cannot start: {str(exc) or type(exc).__name__}")
            )
            return
        os.close(write_fd)
        self.pid = child.pid
        self.report_start_at = time.monotonic() + START_REPORT_DELAY
        try:
            self._supervise(child, read_fd)
        finally:
            os.close(read_fd)

    def _supervise(self, proc: Child, read_fd: int) -> None:
        spec = self.spec
        timeout = spec.get("timeout") or 0
        deadline = time.monotonic() + timeout if timeout else None
        pidfd = os.pidfd_open(proc.pid)
        selector = self.selector
        selector.register(read_fd, selectors.EVENT_READ, "output")
        selector.register(pidfd, selectors.EVENT_READ, "exit")
        exited = False
        try:
            while not exited:
                wait = self._next_wakeup(deadline, self.grace)
                for key, _ in selector.select(wait):
                    if key.data == "output":
                        data = os.read(read_fd, READ_CHUNK)
                        if data:
                            self.log.write(data)
                        else:
                            selector.unregister(read_fd)
                    elif key.data == "exit":
                        exited = True
                    else:
                        try:
                            self.channel.receive_ready()
                        except SupervisorGone:
                            kill_group(proc.pid, signal.SIGKILL)
                            raise
                        self._handle_control(proc)
                now = time.monotonic()
                if not self.start_reported and now >= self.report_start_at and not exited:
                    self._report_start()
                if deadline is not None and now >= deadline and not self.timed_out and not exited:
                    self.timed_out = True
                    self._terminate(proc)
                if self.term_sent_at is not None and now - self.term_sent_at >= self.grace:
                    kill_group(proc.pid, signal.SIGKILL)
            # The shell is a zombie until reaped, so its process group id cannot be
            # reused yet: clear anything it left behind before reaping it.
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            self._drain(read_fd, selector)
        finally:
            if read_fd in selector.get_map():
                selector.unregister(read_fd)
            selector.unregister(pidfd)
            os.close(pidfd)
        self._report(proc.returncode, timeout)

    def _report_start(self) -> None:
        self.start_reported = True
        self.channel.send(messages.started(self.pid, process_start_time(self.pid) or time.time()))

    def _next_wakeup(self, deadline: float | None, grace: float) -> float | None:
        now = time.monotonic()
        candidates = []
        if not self.start_reported:
            candidates.append(self.report_start_at - now)
        if deadline is not None and not self.timed_out:
            candidates.append(deadline - now)
        if self.term_sent_at is not None:
            candidates.append(self.term_sent_at + grace - now)
        return max(0.0, min(candidates)) if candidates else None

    def _handle_control(self, proc: Child) -> None:
        while self.channel.inbox:
            message = self.channel.inbox.pop(0)
            if message.get("t") == messages.KILL and self.kill_reason is None:
                self.kill_reason = str(message.get("reason", "killed"))
                if "grace" in message:  # a kill that must be over sooner (a fence)
                    self.grace = min(self.grace, float(message["grace"]))
                self._terminate(proc)
            elif message.get("t") == messages.STOP:
                self.stop_after = True

    def _terminate(self, proc: Child) -> None:
        if self.term_sent_at is None:
            self.term_sent_at = time.monotonic()
            kill_group(proc.pid, signal.SIGTERM)

    def _drain(self, read_fd: int, selector: selectors.BaseSelector) -> None:
        """Read what is left in the pipe; everything that could write to it is gone."""
        if read_fd not in selector.get_map():
            return
        os.set_blocking(read_fd, False)
        while True:
            try:
                data = os.read(read_fd, READ_CHUNK)
            except BlockingIOError:
                return
            if not data:
                return
            self.log.write(data)

    def _report(self, returncode: int, timeout: float) -> None:
        log_path = self.log.close()
        signal_number = -returncode if returncode < 0 else None
        exit_code = returncode if returncode >= 0 else None
        if self.kill_reason is not None:
            outcome, error = "killed", self.kill_reason
        elif self.timed_out:
            outcome, error = "timeout", f"timed out after {timeout:g} s"
        elif returncode == 0:
            outcome, error = "completed", None
        elif signal_number is not None:
            outcome, error = "failed", f"killed by {signal_name(signal_number)}"
        else:
            outcome, error = "failed", f"exit code {returncode}"
        report = messages.done(outcome, error, exit_code, signal_number, log_path, self.log.error)
        if not self.start_reported:
            report["pid"] = self.pid  # the shell is gone: no start time to read
        self.channel.send(report)


class Child:
    """A job's shell started by posix_spawn: the part of Popen the worker uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


# Dispositions an exec keeps: Python ignores SIGPIPE and SIGXFSZ at start-up and
# the worker ignores SIGINT; a job starts with all three at their defaults.
RESET_SIGNALS = (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ)


def spawn(spec: dict, output_fd: int) -> Child | subprocess.Popen:
    """Start `/bin/sh -c COMMAND` in its own session, output to `output_fd`.

    posix_spawn (vfork and exec, in C) costs the worker a fraction of what
    subprocess.Popen does. It has no working directory argument, so the worker,
    which runs one job at a time, moves there itself. Switching user (a root
    daemon running a job as its submitter) goes through Popen.
    """
    if not spec["cwd"].startswith("/"):
        # Stored before enqueue refused them: relative to whatever directory this
        # worker's previous job left it in, a different place on every worker.
        raise ValueError(f"working directory {spec['cwd']!r} is not an absolute path")
    argv = ["/bin/sh", "-c", spec["command"]]
    identity = _identity(spec.get("uid"), spec.get("gid"))
    if identity:
        return subprocess.Popen(
            argv,
            cwd=spec["cwd"],
            env=spec["env"],
            stdin=subprocess.DEVNULL,
            stdout=output_fd,
            stderr=output_fd,
            start_new_session=True,
            close_fds=True,
            **identity,
        )
    os.chdir(spec["cwd"])
    pid = os.posix_spawn(
        "/bin/sh",
        argv,
        spec["env"],
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, output_fd, 1),
            (os.POSIX_SPAWN_DUP2, output_fd, 2),
        ],
        setsid=True,
        setsigdef=RESET_SIGNALS,
    )
    return Child(pid)


def _identity(uid: int | None, gid: int | None) -> dict:
    """Popen arguments that run the job as `uid` (only a root worker can switch)."""
    if uid is None or os.geteuid() != 0 or uid == 0:
        return {}
    gid = gid if gid is not None else uid
    try:
        groups = os.getgrouplist(pwd.getpwuid(uid).pw_name, gid)
    except KeyError:
        groups = [gid]  # a uid without a passwd entry: its own group only
    return {"user": uid, "group": gid, "extra_groups": groups}


def serve(channel: Channel) -> None:
    selector = selectors.DefaultSelector()
    selector.register(channel.sock, selectors.EVENT_READ, "control")
    channel.send(messages.ready(os.getpid()))
    environ: dict[str, str] = {}
    while True:
        message = channel.next_message()
        kind = message.get("t")
        if kind == messages.STOP:
            return
        if kind == messages.RUN:
            environ = message.get("env", environ)
            message["env"] = {**environ, **message["env_add"]}
            run = JobRun(channel, message, selector)
            run.execute()
            if run.stop_after:
                return


def main() -> None:
    fd = int(sys.argv[1])
    supervisor_pid = int(sys.argv[2]) if len(sys.argv) > 2 else None
    # Ctrl-C in a terminal reaches the whole foreground group; stopping is the
    # supervisor's decision, so the worker leaves SIGINT to it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)
    die_with_parent(signal.SIGTERM)
    # The supervisor may have died before the death signal was armed. Compare with
    # its pid rather than with 1: an orphan goes to the nearest subreaper, not init.
    if os.getppid() != (supervisor_pid or os.getppid()) or os.getppid() == 1:
        return
    sock = socket.socket(fileno=fd)
    # Passed to us inheritable; jobs must not get a handle on the supervisor.
    sock.set_inheritable(False)
    try:
        serve(Channel(sock))
    except SupervisorGone:
        pass


def _exit_on_term(signum: int, frame: object) -> None:
    # The supervisor is gone (parent-death signal) or asked us to die. The job
    # must not outlive us: kill each child's process group (the shell leads its
    # own) and the child itself, which may not have called setsid() yet.
    for pid in _child_pids():
        kill_group(pid, signal.SIGKILL)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(143)


def _child_pids() -> list[int]:
    try:
        import psutil

        return [child.pid for child in psutil.Process().children()]
    except Exception:
        return []


if __name__ == "__main__":
    main()
