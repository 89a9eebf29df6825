"""The dead letter queue: dead jobs with their last error, a page at a time."""

from __future__ import annotations

from aiohttp import web

from queuectl_client.web.render import page
from queuectl_client.web.routes.common import link, query
from queuectl_client.web.routes.jobs import PAGE_SIZE

routes = web.RouteTableDef()


@routes.get("/dlq")
async def dlq(request: web.Request) -> web.Response:
    queue = request.query.get("queue") or None
    after = request.query.get("after")
    cursor = int(after) if after and after.isdigit() else None
    result = await link(request).call("dlq_list", queue=queue, limit=PAGE_SIZE, after=cursor)
    following = result["next"]
    return page(
        request,
        "dlq.html",
        title="Dead letter queue",
        jobs=result["jobs"],
        queue=queue,
        next_url=None if following is None else "/dlq?" + query(queue=queue, after=following),
        bulk_url="/jobs/bulk?" + query(action="retry", state="dead", queue=queue),
        done=request.query.get("done"),
    )
