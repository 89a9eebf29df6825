"""Templates: Jinja2 with autoescaping always on, so a command or an output line
holding `<script>` is shown as text; nothing is ever marked safe."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from protocol.times import parse_iso
from queuectl_client.cli.format import STATE_LABELS, duration, local_time

HERE = Path(__file__).resolve().parent
# Names of environment variables whose values are hidden unless asked for.
SECRET_NAME = re.compile(
    r"(SECRET|TOKEN|PASSW|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH|COOKIE|SESSION|_KEY$|^KEY$)",
    re.IGNORECASE,
)


def looks_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def ago(iso: str | None) -> str:
    if not iso:
        return "-"
    return duration(max(0.0, time.time() - parse_iso(iso)))


def between(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    seconds = parse_iso(end) - parse_iso(start)
    return f"{seconds:.3f}s" if seconds < 60 else duration(seconds)


def seconds(value: float | None) -> str:
    return "-" if value is None else duration(value)


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def local_epoch(moment: float) -> str:
    return time.strftime("%H:%M", time.localtime(moment))


ENV.filters.update(
    local_epoch=local_epoch,
    ago=ago,
    local=local_time,
    between=between,
    seconds=seconds,
    label=lambda s: STATE_LABELS.get(s, s),
)
ENV.globals.update(looks_secret=looks_secret)


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    guard = request.app["guard"]
    html = ENV.get_template(template).render(
        read_only=guard.read_only,
        logged_in=guard.token is not None,
        path=request.path,
        live=request.app["live"].connected,
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html")
