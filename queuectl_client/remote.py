"""Reaching a daemon over TCP (`--connect tcp://HOST:PORT`), with TLS and a token.

`tcp://` is plain TCP, which the daemon accepts on loopback only; `tls://`, or
`tcp://` with a CA file (`--tls-ca`, e.g. the daemon's self-signed
certificate), is TLS with the server's certificate and name checked.
"""

from __future__ import annotations

import os
import socket
import ssl
from urllib.parse import urlsplit


class RemoteError(Exception):
    """A bad --connect URL or token file; the message says which, in one line."""


def parse_url(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or not parts.port:
        raise RemoteError(f"--connect {url!r}: expected tcp://HOST:PORT or tls://HOST:PORT")
    return parts.scheme, parts.hostname, parts.port


def read_token(path: str) -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        raise RemoteError(f"cannot read token file {path}: {exc.strerror}") from None
    if not token:
        raise RemoteError(f"token file {path} is empty")
    return token


def tls_context(url: str, tls_ca: str | None) -> ssl.SSLContext | None:
    """The TLS settings for `url`; checked before connecting, so mistakes show first."""
    scheme, _, _ = parse_url(url)
    if scheme != "tls" and not tls_ca:
        return None
    try:
        return ssl.create_default_context(cafile=tls_ca)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise RemoteError(f"cannot load CA file {tls_ca}: {reason}") from None


def open_tcp(url: str, tls_ca: str | None, timeout: float) -> socket.socket:
    _, host, port = parse_url(url)
    context = tls_context(url, tls_ca)
    sock = socket.create_connection((host, port), timeout=timeout)
    if context is not None:
        try:
            sock = context.wrap_socket(sock, server_hostname=host)
        except (OSError, ssl.SSLError):
            sock.close()
            raise
    sock.settimeout(None)
    return sock
