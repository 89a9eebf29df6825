"""What the page modules share: redirects after a POST, and the daemon link."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from queuectl_client.web.link import DaemonLink


def link(request: web.Request) -> DaemonLink:
    return request.app["link"]


def local_path(value: Any, default: str) -> str:
    """A path on this site: a redirect target from a form must not lead elsewhere."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default


def done(where: str, message: str) -> web.HTTPSeeOther:
    """Back to a page after an action, with what was done to show on it."""
    separator = "&" if "?" in where else "?"
    return web.HTTPSeeOther(f"{where}{separator}{urlencode({'done': message})}")


def query(**params: Any) -> str:
    return urlencode({key: value for key, value in params.items() if value not in (None, "")})
