"""The overview: per queue counts, running jobs, the fleet; and fleet scaling."""

from __future__ import annotations

from aiohttp import web

from queuectl_client.web import history
from queuectl_client.web.render import page
from queuectl_client.web.routes.common import done, link

routes = web.RouteTableDef()


async def snapshot(request: web.Request) -> dict:
    """What the overview shows, read with the same ops as a `watch` snapshot."""

    def read(client) -> dict:
        status = client.status()
        return {
            "type": "snapshot",
            "jobs": status["jobs"],
            "workers": status["workers"],
            # Every daemon of a shared store (one on SQLite), with its own fleet.
            "daemons": status.get("daemons", []),
            "queues": client.queue_list(),
            "stats": client.stats(per_minute=True),
        }

    return await link(request).run(read)


@routes.get("/")
async def overview(request: web.Request) -> web.Response:
    current = await snapshot(request)
    per_minute = current["stats"]["per_minute"]
    return page(
        request,
        "overview.html",
        title="Overview",
        done=request.query.get("done"),
        bars=history.bars(per_minute),
        seen=history.totals(per_minute),
        **current,
    )


@routes.get("/api/snapshot")
async def api_snapshot(request: web.Request) -> web.Response:
    """The polling fallback of the live pages while the stream is down."""
    current = await snapshot(request)
    del current["stats"]
    return web.json_response(current)


@routes.post("/fleet/scale")
async def scale(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        count = int(str(form.get("count", "")))
    except ValueError:
        raise web.HTTPBadRequest(text="count must be a whole number") from None
    result = await link(request).run(lambda client: client.scale_workers(count))
    raise done("/", f"fleet scaled to {result['target']}")
