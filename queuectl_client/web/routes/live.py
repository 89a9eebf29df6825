"""Server-sent events: the daemon's `watch` stream, carried to each open page."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

routes = web.RouteTableDef()

# A comment line this often keeps proxies and the browser from closing an idle stream.
HEARTBEAT_SECONDS = 15.0


@routes.get("/events")
async def events(request: web.Request) -> web.StreamResponse:
    live = request.app["live"]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    queue = live.subscribe()
    try:
        first = live.latest if live.connected else {"type": "down"}
        if first is not None:
            await _send(response, first)
        while True:
            try:
                frame = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except asyncio.TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            if frame is None:
                break  # the server is stopping
            await _send(response, frame)
    except ConnectionResetError:
        pass
    finally:
        live.unsubscribe(queue)
    return response


async def _send(response: web.StreamResponse, frame: dict) -> None:
    await response.write(b"data: " + json.dumps(frame).encode() + b"\n\n")
