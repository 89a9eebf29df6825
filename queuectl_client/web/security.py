"""What keeps the dashboard from being used by anyone but its own pages.

* Every response forbids framing and scripts from anywhere but /static/ (CSP).
* A state-changing request (anything but GET and HEAD) must say
  `Sec-Fetch-Site: same-origin`, which browsers set and pages cannot forge: a
  form on another site, or on another port of this host (`same-site`), is
  refused. A program that is not a browser sends the token instead.
* With a token, every request needs the session cookie the login sets, or the
  token itself (`Authorization: Bearer`).
* On loopback, the Host header must name loopback: a DNS-rebound name pointing
  at 127.0.0.1 must not read the queue from another site's page.
* `--read-only` refuses every state-changing request, not only hides the buttons.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

COOKIE = "queuectl_session"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")
# Paths that a visitor without a session may reach: the login page and its assets.
OPEN_PATHS = ("/login", "/static/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Guard:
    token: str | None = None
    read_only: bool = False
    loopback: bool = True

    def session_value(self) -> str:
        """What the session cookie holds: derived from the token, so a restart keeps
        sessions and a new token ends them; the token itself never leaves in a cookie."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"queuectl-web-session", hashlib.sha256).hexdigest()

    def token_matches(self, given: str | None) -> bool:
        return (
            self.token is not None
            and given is not None
            and (hmac.compare_digest(given.encode(), self.token.encode()))
        )

    def has_session(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        cookie = request.cookies.get(COOKIE)
        if cookie is not None and hmac.compare_digest(cookie, self.session_value()):
            return True
        return self.token_matches(bearer(request))


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_is_loopback(header: str) -> bool:
    name = header.rsplit(":", 1)[0] if not header.endswith("]") else header
    return name in LOOPBACK_NAMES or is_loopback(name)


def refuse(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def middleware(guard: Guard) -> Callable:
    @web.middleware
    async def guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await _check(guard, request, handler)

    return guarded


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response as it is prepared: streams, static files and redirects too."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"


async def _check(guard: Guard, request: web.Request, handler: Handler) -> web.StreamResponse:
    if guard.loopback and not host_is_loopback(request.host):
        return refuse(421, f"this dashboard answers to loopback names, not {request.host!r}")
    changing = request.method not in ("GET", "HEAD", "OPTIONS")
    if changing:
        site = request.headers.get("Sec-Fetch-Site")
        if site is None:
            if not guard.token_matches(bearer(request)):
                return refuse(403, "refused: not sent by this dashboard's pages (no token)")
        elif site != "same-origin":
            return refuse(403, f"refused: a request from another site ({site})")
        if guard.read_only and request.path not in ("/login", "/logout"):
            return refuse(403, "refused: this dashboard is read-only")
    public = request.path.startswith(OPEN_PATHS)
    if not public and not guard.has_session(request):
        if changing or request.path.startswith(("/api/", "/events")):
            return refuse(401, "log in first")
        raise web.HTTPSeeOther(f"/login?next={request.path_qs}")
    return await handler(request)
