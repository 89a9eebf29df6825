"""Logging in with the token once; the session cookie carries it from then on."""

from __future__ import annotations

import asyncio

from aiohttp import web

from queuectl_client.web.render import page
from queuectl_client.web.routes.common import local_path
from queuectl_client.web.security import COOKIE

routes = web.RouteTableDef()

WRONG_TOKEN_DELAY = 0.5  # slows down guessing


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    return page(
        request,
        "login.html",
        title="Log in",
        next=local_path(request.query.get("next"), "/"),
        wrong=False,
    )


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    guard = request.app["guard"]
    form = await request.post()
    target = local_path(form.get("next"), "/")
    if guard.token is None:
        raise web.HTTPSeeOther(target)
    if not guard.token_matches(str(form.get("token", "")).strip()):
        await asyncio.sleep(WRONG_TOKEN_DELAY)
        return page(request, "login.html", status=403, title="Log in", next=target, wrong=True)
    response = web.HTTPSeeOther(target)
    response.set_cookie(COOKIE, guard.session_value(), httponly=True, samesite="Strict", path="/")
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response
