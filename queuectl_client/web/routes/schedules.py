"""Schedules: next fire, last job; pause, resume and run now."""

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


@routes.post("/schedules/{name}/run")
async def run_now(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    result = await link(request).call("schedule_run", name=name)
    what = "holds the unique key" if result["existing"] else "enqueued"
    raise done("/schedules", f"schedule {name}: job {result['id']} {what}")
