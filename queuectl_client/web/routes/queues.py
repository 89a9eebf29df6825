"""Queues: counts, limits, priority; pause, resume and settings."""

from __future__ import annotations

from aiohttp import web

from queuectl_client.web.render import page
from queuectl_client.web.routes.common import done, link, local_path

routes = web.RouteTableDef()


@routes.get("/queues")
async def queues(request: web.Request) -> web.Response:
    listed = await link(request).run(lambda client: client.queue_list())
    return page(
        request, "queues.html", title="Queues", queues=listed, done=request.query.get("done")
    )


@routes.post("/queues/{name}/{action:pause|resume}")
async def pause_or_resume(request: web.Request) -> web.Response:
    name, action = request.match_info["name"], request.match_info["action"]
    form = await request.post()
    await link(request).call(f"queue_{action}", name=name)
    raise done(local_path(form.get("back"), "/queues"), f"queue {name} {action}d")


@routes.post("/queues/{name}/set")
async def set_queue(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    form = await request.post()
    changes = {}
    for key in ("concurrency", "priority"):
        text = str(form.get(key, "")).strip()
        if text:
            try:
                changes[key] = int(text)
            except ValueError:
                raise web.HTTPBadRequest(text=f"{key} must be a whole number") from None
    await link(request).call("queue_set", name=name, **changes)
    raise done("/queues", f"queue {name} updated")
