"""Schedules: next fire, last job; pause and resume."""

from __future__ import annotations

from aiohttp import web

from queuectl_client.web.render import page
from queuectl_client.web.routes.common import done, link

routes = web.RouteTableDef()


@routes.get("/schedules")
async def schedules(request: web.Request) -> web.Response:
    listed = await link(request).run(lambda client: client.schedule_list())
    return page(
        request,
        "schedules.html",
        title="Schedules",
        schedules=listed,
        done=request.query.get("done"),
    )


@routes.post("/schedules/{name}/{action:pause|resume}")
async def act(request: web.Request) -> web.Response:
    name, action = request.match_info["name"], request.match_info["action"]
    await link(request).call(f"schedule_{action}", name=name)
    raise done("/schedules", f"schedule {name} {action}d")
