"""queuectl client: a `Client` library for Python programs, and the `queuectl` CLI."""

from protocol.errors import ErrorCode, ProtocolError
from queuectl_client.client import BadArgument, Client, DaemonUnreachable

__all__ = ["BadArgument", "Client", "DaemonUnreachable", "ErrorCode", "ProtocolError"]
