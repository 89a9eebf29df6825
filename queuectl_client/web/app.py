"""The dashboard application: routes, guard, the shared stream; and its process."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from protocol.errors import ErrorCode, ProtocolError
from queuectl_client.client import Client, DaemonUnreachable
from queuectl_client.web.link import DaemonLink
from queuectl_client.web.live import Live
from queuectl_client.web.render import page
from queuectl_client.web.routes import dlq, job, jobs, live, login, overview, queues, schedules
from queuectl_client.web.security import Guard, add_headers, middleware

STATIC = Path(__file__).resolve().parent / "static"
PAGES = (overview, jobs, job, dlq, schedules, queues, login, live)
STATUS_OF = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNAUTHORIZED: 403,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.SHUTTING_DOWN: 503,
}


@web.middleware
async def daemon_errors(request: web.Request, handler) -> web.StreamResponse:
    """What the daemon refused, or that it cannot be reached, as a page."""
    try:
        return await handler(request)
    except ProtocolError as exc:
        status = STATUS_OF.get(exc.code, 500)
        return page(
            request,
            "error.html",
            status=status,
            title="Refused",
            code=exc.code.value,
            message=exc.message,
        )
    except DaemonUnreachable as exc:
        return page(
            request,
            "error.html",
            status=503,
            title="No daemon",
            code="unreachable",
            message=str(exc),
        )


def make_app(
    make_client: Callable[[], Client], guard: Guard, interval: float = 1.0
) -> web.Application:
    app = web.Application(middlewares=[middleware(guard), daemon_errors])
    app["guard"] = guard
    app["link"] = DaemonLink(make_client)
    app["live"] = Live(make_client, interval)
    for module in PAGES:
        app.add_routes(module.routes)
    app.router.add_static("/static/", STATIC)

    async def start_live(app: web.Application) -> None:
        app["live"].start()

    async def stop_live(app: web.Application) -> None:
        app["live"].end_pages()
        await asyncio.to_thread(app["live"].stop)
        app["link"].close()

    app.on_response_prepare.append(add_headers)
    app.on_startup.append(start_live)
    app.on_shutdown.append(stop_live)
    return app


async def serve(
    app: web.Application, host: str, port: int, announce: Callable[[str], None]
) -> None:
    """Serve until SIGINT or SIGTERM, then close open streams and stop."""
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    announce(f"http://{shown}:{bound[1]}/")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
