"""The jobs list: filters, search, keyset pages; and bulk actions on a filter.

Pages follow the `after` cursor of `list_jobs` (the store's index on enqueue
order), so a page costs the same at a million jobs as at ten; nothing counts the
jobs of a filter except a bulk action, which must show the count before it acts.
"""

from __future__ import annotations

from aiohttp import web

from protocol.errors import ProtocolError
from protocol.messages import JOB_STATES, LIVE_STATES, TERMINAL_STATES
from queuectl_client.web.render import page
from queuectl_client.web.routes.common import done, link, query

routes = web.RouteTableDef()

PAGE_SIZE = 50
# A search reads at most this many jobs per page view, then offers to go on.
SEARCH_SCAN = 5000
ID_HITS = 20
# A bulk action acts on at most this many jobs; a larger filter is done in rounds.
BULK_MAX = 10_000
BULK_BATCH = 200


def _filters(request: web.Request) -> dict:
    state = request.query.get("state") or None
    if state is not None and state not in JOB_STATES:
        raise web.HTTPBadRequest(text=f"unknown state {state!r}")
    return {"state": state, "queue": request.query.get("queue") or None}


def _page(client, filters: dict, after: int | None, search: str) -> tuple[list, int | None, int]:
    """One page of jobs and the cursor after it; with a search, the matches among
    at most SEARCH_SCAN jobs read from the cursor on, and how many were read."""
    if not search:
        result = client.call("list_jobs", limit=PAGE_SIZE, after=after, **filters)
        return result["jobs"], result["next"], len(result["jobs"])
    needle = search.lower()
    found, scanned, cursor = [], 0, after
    while scanned < SEARCH_SCAN and len(found) < PAGE_SIZE:
        result = client.call("list_jobs", limit=1000, after=cursor, **filters)
        for job in result["jobs"]:
            if job["id"].startswith(search) or needle in job["command"].lower():
                found.append(job)
        scanned += len(result["jobs"])
        cursor = result["next"]
        if cursor is None:
            break
    return found, cursor, scanned


def _by_id_prefix(client, prefix: str, state: str | None) -> list[dict]:
    """Jobs whose id starts with `prefix`, found through the index on ids."""
    ids = client.complete_ids(prefix, [state] if state else None, ID_HITS)
    jobs = [client.get_job(job_id) for job_id in ids]
    return [job for job in jobs if job_matches(job, {"state": state, "queue": None})]


def job_matches(job: dict, filters: dict) -> bool:
    return all(filters[key] in (None, job[key]) for key in ("state", "queue"))


@routes.get("/jobs")
async def jobs(request: web.Request) -> web.Response:
    filters = _filters(request)
    search = request.query.get("q", "").strip()
    after = request.query.get("after")
    cursor = int(after) if after and after.isdigit() else None

    def read(client):
        listed, following, scanned = _page(client, filters, cursor, search)
        if search and cursor is None:
            by_id = [
                j
                for j in _by_id_prefix(client, search, filters["state"])
                if job_matches(j, filters)
            ]
            known = {job["id"] for job in listed}
            listed = [job for job in by_id if job["id"] not in known] + listed
        return listed, following, scanned, client.queue_list()

    listed, following, scanned, queues = await link(request).run(read)
    return page(
        request,
        "jobs.html",
        title="Jobs",
        jobs=listed,
        next_url=None
        if following is None
        else "/jobs?" + query(**filters, q=search, after=following),
        first_url=None if cursor is None else "/jobs?" + query(**filters, q=search),
        filters=filters,
        search=search,
        scanned=scanned if search else None,
        states=JOB_STATES,
        queues=[q["name"] for q in queues],
        bulk=_bulk_actions(filters["state"]),
        filter_query=query(**filters),
        done=request.query.get("done"),
    )


@routes.get("/jobs/row/{id}")
async def row(request: web.Request) -> web.Response:
    """One row of the jobs table, for a job the page learned of from the stream."""
    job = await link(request).run(lambda client: client.get_job(request.match_info["id"]))
    return page(request, "job_row.html", job=job)


# -- bulk actions --------------------------------------------------------------


def _bulk_actions(state: str | None) -> list[str]:
    if state in TERMINAL_STATES:
        return ["retry", "purge"]
    if state in LIVE_STATES:
        return ["cancel"]
    return []


def _matching_ids(client, filters: dict) -> list[str]:
    ids, cursor = [], None
    while len(ids) < BULK_MAX:
        result = client.call(
            "list_jobs", limit=min(10_000, BULK_MAX - len(ids)), after=cursor, **filters
        )
        ids += [job["id"] for job in result["jobs"]]
        cursor = result["next"]
        if cursor is None:
            break
    return ids


def _bulk_request(request: web.Request, source) -> tuple[str, dict]:
    action = source.get("action", "")
    filters = {"state": source.get("state") or None, "queue": source.get("queue") or None}
    if action not in _bulk_actions(filters["state"]):
        raise web.HTTPBadRequest(text=f"cannot {action or '?'} jobs in state {filters['state']}")
    return action, filters


@routes.get("/jobs/bulk")
async def bulk_confirm(request: web.Request) -> web.Response:
    action, filters = _bulk_request(request, request.query)
    ids = await link(request).run(lambda client: _matching_ids(client, filters))
    return page(
        request,
        "bulk.html",
        title=f"{action.capitalize()} jobs",
        action=action,
        filters=filters,
        count=len(ids),
        capped=len(ids) >= BULK_MAX,
        sample=ids[:10],
        back="/jobs?" + query(**filters),
    )


@routes.post("/jobs/bulk")
async def bulk_apply(request: web.Request) -> web.Response:
    form = await request.post()
    action, filters = _bulk_request(request, form)

    def apply(client) -> int:
        if action == "purge":
            return client.purge(filters["state"], 0, filters["queue"])
        if action == "retry" and filters["state"] == "dead":
            return len(client.dlq_retry(all=True, queue=filters["queue"]))
        count = 0
        ids = _matching_ids(client, filters)
        for start in range(0, len(ids), BULK_BATCH):
            for job_id in ids[start : start + BULK_BATCH]:
                try:
                    client.call(action, id=job_id)
                    count += 1
                except ProtocolError:
                    pass  # a job that moved on meanwhile (finished, purged) is skipped
        return count

    count = await link(request).run(apply)
    verb = {"retry": "retried", "cancel": "canceled", "purge": "purged"}[action]
    raise done("/jobs?" + query(**filters), f"{verb} {count} job(s)")
