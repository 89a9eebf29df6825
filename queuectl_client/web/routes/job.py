"""One job: its spec, its runs, its output (followed live), why it waits; and the
actions on it."""

from __future__ import annotations

from aiohttp import web

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import TERMINAL_STATES, WAITING_STATES
from queuectl_client.cli.waiting import job_blockers
from queuectl_client.web.render import page
from queuectl_client.web.routes.common import done, link

routes = web.RouteTableDef()

TAIL_BYTES = 64 * 1024
CHUNK = 256 * 1024
# Reading a log to find its end stops here; past it the page shows what it read.
MAX_TAIL_READ = 64 * CHUNK


def _tail(client, job_id: str, run: int) -> tuple[bytes, int, bool, bool]:
    """The last TAIL_BYTES of a run's output, where it ends, whether it runs, and
    whether the tail leaves out the start."""
    kept, offset, running = b"", 0, False
    while offset < MAX_TAIL_READ:
        chunk = client.logs(job_id, run=run, offset=offset, limit=CHUNK)
        data, offset, running = chunk["data"], chunk["offset"], chunk["running"]
        kept = (kept + data)[-TAIL_BYTES:]
        if len(data) < CHUNK:
            break
    return kept, offset, running, offset > len(kept)


@routes.get("/job/{id}")
async def job(request: web.Request) -> web.Response:
    job_id = request.match_info["id"]

    def read(client):
        record = client.get_job(job_id)
        blockers = []
        if record["state"] in WAITING_STATES:
            blockers = job_blockers(record, client.status(), client.queue_list())
        tail = _tail(client, job_id, record["runs"]) if record["runs"] else None
        return record, blockers, tail

    record, blockers, tail = await link(request).run(read)
    output, offset, running, cut = tail or (b"", 0, False, False)
    return page(
        request,
        "job.html",
        title=f"Job {job_id}",
        job=record,
        env=sorted((record.get("env") or {}).items()),
        reveal=request.query.get("secrets") == "show",
        blockers=blockers,
        output=output.decode(errors="replace"),
        offset=offset,
        running=running,
        cut=cut,
        terminal=TERMINAL_STATES,
        done=request.query.get("done"),
    )


@routes.get("/job/{id}/output")
async def output(request: web.Request) -> web.StreamResponse:
    """A run's output as plain text: all of it, or (with `offset`) the next chunk,
    which is how a page follows a running job."""
    job_id = request.match_info["id"]
    run = int(request.query["run"]) if request.query.get("run", "").isdigit() else None
    if "offset" in request.query:
        offset = int(request.query["offset"]) if request.query["offset"].isdigit() else 0
        chunk = await link(request).run(lambda c: c.logs(job_id, run=run, offset=offset, wait=5))
        return web.Response(
            body=chunk["data"],
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Offset": str(chunk["offset"]), "X-Running": str(chunk["running"]).lower()},
        )
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    offset = 0
    while True:
        chunk = await link(request).run(
            lambda c, at=offset: c.logs(job_id, run=run, offset=at, limit=CHUNK)
        )
        if not chunk["data"]:
            break
        await response.write(chunk["data"])
        offset = chunk["offset"]
    await response.write_eof()
    return response


ACTIONS = {"retry": "retried", "cancel": "canceled", "purge": "purged"}


@routes.post("/job/{id}/{action}")
async def act(request: web.Request) -> web.Response:
    job_id, action = request.match_info["id"], request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound(text=f"no action {action!r}")

    def apply(client) -> None:
        if action != "purge":
            client.call(action, id=job_id)
            return
        # One job's purge: a dead job through the DLQ; another finished one by
        # its state, which `purge` takes only together with an age.
        if client.get_job(job_id)["state"] != "dead":
            raise ProtocolError(ErrorCode.CONFLICT, "only a dead job can be purged here")
        client.dlq_purge(job_id)

    await link(request).run(apply)
    where = "/dlq" if action == "purge" else f"/job/{job_id}"
    raise done(where, f"job {job_id} {ACTIONS[action]}")
