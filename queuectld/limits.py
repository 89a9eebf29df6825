"""Size limits on what a client submits, shared by enqueue and schedules.

Each check raises a `too_large` ProtocolError naming the setting to raise,
and environments lose the connection's private variables first, so a token
neither counts against the limit nor reaches a job.
"""

from __future__ import annotations

from protocol.errors import ErrorCode, ProtocolError
from queuectld.config import Config
from queuectld.runas import public_environ


def environment_bytes(environ: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in environ.items())


def check_command(command: str, config: Config, what: str) -> None:
    if len(command.encode()) > config["max-command-bytes"]:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"{what}: command exceeds max-command-bytes {config['max-command-bytes']}",
        )


def submitter_environment(cwd: str, environ: dict[str, str], config: Config) -> dict[str, str]:
    """The environment jobs inherit from the client, without its private variables."""
    environ = public_environ(environ)
    size = len(cwd.encode()) + environment_bytes(environ)
    if size > config["max-env-bytes"]:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"the submitting environment ({size} bytes) exceeds max-env-bytes "
            f"{config['max-env-bytes']}",
        )
    return environ


def job_environment(env: dict[str, str], config: Config, what: str) -> dict[str, str]:
    """A job's own `env` additions, checked like the submitter's."""
    env = public_environ(env)
    if environment_bytes(env) > config["max-env-bytes"]:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"{what}: env exceeds max-env-bytes {config['max-env-bytes']}"
        )
    return env
