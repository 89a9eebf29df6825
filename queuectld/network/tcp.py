"""The optional TCP listener: TLS and a shared token, for clients on other hosts.

Off by default. Plain TCP is allowed on loopback addresses only, because the
token (and every job's command and environment) would otherwise cross the
network in clear text.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

MIN_TOKEN_CHARS = 16


class ListenError(Exception):
    """The TCP listener cannot be set up as asked; the message says why, in one line."""


@dataclass
class TcpSettings:
    host: str
    port: int
    token: bytes
    ssl_context: ssl.SSLContext | None


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ListenError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:7370")
    return host.strip("[]"), int(port)


def read_token(path: str) -> bytes:
    try:
        info = os.stat(path)
        token = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ListenError(f"cannot read token file {path}: {exc.strerror}") from None
    if info.st_mode & stat.S_IROTH:
        raise ListenError(f"token file {path} is readable by everyone; chmod 600 it")
    if len(token) < MIN_TOKEN_CHARS:
        raise ListenError(
            f"token in {path} is too short ({len(token)} chars, at least {MIN_TOKEN_CHARS}); "
            "make one with: openssl rand -hex 32"
        )
    return token


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ListenError(f"--listen: cannot resolve {host!r}: {exc.strerror}") from None
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def server_tls(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise ListenError(f"cannot load TLS certificate {cert} / key {key}: {reason}") from None
    return context


def tcp_settings(
    listen: str, token_file: str | None, cert: str | None, key: str | None
) -> TcpSettings:
    host, port = parse_listen(listen)
    if token_file is None:
        raise ListenError("--listen needs --token-file: TCP clients are let in by token")
    if (cert is None) != (key is None):
        raise ListenError("give both --tls-cert and --tls-key, or neither")
    context = server_tls(cert, key) if cert and key else None
    if context is None and not is_loopback(host):
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ListenError(
            f"refusing to listen on {where} without TLS: give --tls-cert and --tls-key, "
            "or listen on a loopback address"
        )
    return TcpSettings(host, port, read_token(token_file), context)


def token_matches(expected: bytes, given: object) -> bool:
    """Constant-time comparison, so the time taken says nothing about the token."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(expected, given.encode("utf-8", "surrogateescape"))
