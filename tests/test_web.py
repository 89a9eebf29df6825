"""The dashboard's pages and actions through aiohttp's test client, against a real
daemon: every page, every action, and the refusals (cross-site requests,
read-only, the token, foreign Host names). The browser tests are in
test_web_browser.py."""

from __future__ import annotations

import json
import subprocess
import sys

from web_tools import SAME_ORIGIN, WebProcess, run_app

from queuectl_client.web.render import looks_secret
from queuectl_client.web.security import COOKIE, Guard

TOKEN = "a-token-of-more-than-16-chars"


def _dead_job(daemon, job_id: str = "d1", output: str = "boom") -> None:
    daemon.cli(
        "add",
        "--id",
        job_id,
        "--max-retries",
        "0",
        "--queue",
        "q",
        "--",
        f"echo '{output}'; exit 3",
    )
    with daemon.client() as client:
        client.scale_workers(1)
        client.wait([job_id], timeout=20)
        client.scale_workers(0)
        assert client.get_job(job_id)["state"] == "dead"


def _state(daemon, job_id: str) -> str:
    with daemon.client() as client:
        return client.get_job(job_id)["state"]


def test_every_page_renders_with_the_safety_headers(daemon):
    _dead_job(daemon)
    with daemon.client() as client:
        client.schedule_add("nightly", "0 3 * * *", {"command": "backup"})

    async def check(c):
        for path in (
            "/", "/jobs", "/jobs?state=dead&queue=q", "/jobs?q=d", "/job/d1", "/dlq",
            "/schedules", "/queues", "/jobs/bulk?action=retry&state=dead", "/jobs/row/d1",
            "/job/d1/output?run=1", "/login", "/static/app.js",
        ):  # fmt: skip
            response = await c.get(path)
            assert response.status == 200, (path, await response.text())
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert response.headers["X-Frame-Options"] == "DENY"
        overview = await (await c.get("/")).text()
        assert 'data-queue="q"' in overview and '<script src="/static/app.js"' in overview
        assert "<script>" not in overview  # no inline script anywhere
        job = await (await c.get("/job/d1")).text()
        assert "exit code 3" in job and "boom" in job
        assert "nightly" in await (await c.get("/schedules")).text()
        snapshot = await (await c.get("/api/snapshot")).json()
        assert snapshot["jobs"]["dead"] == 1

    run_app(daemon.home, check)


def test_html_in_commands_and_output_is_shown_as_text(daemon):
    _dead_job(daemon, "x", "<script>alert(1)</script><b>bold</b>")

    async def check(c):
        for path in ("/job/x", "/jobs", "/dlq"):
            text = await (await c.get(path)).text()
            assert "<script>alert" not in text and "<b>bold" not in text, path
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
        raw = await c.get("/job/x/output?run=1")
        assert raw.headers["Content-Type"].startswith("text/plain")
        assert raw.headers["X-Content-Type-Options"] == "nosniff"

    run_app(daemon.home, check)


def test_a_missing_job_is_a_page_that_says_so(daemon):
    async def check(c):
        response = await c.get("/job/nope")
        assert response.status == 404 and "no job" in (await response.text()).lower()

    run_app(daemon.home, check)


def test_jobs_are_paged_with_the_cursor_and_searched(daemon):
    with daemon.client() as client:
        client.enqueue(*({"id": f"j{i:03d}", "command": f"echo n{i}"} for i in range(120)))
        client.enqueue({"id": "other", "command": "make needle"})

    async def check(c):
        first = await (await c.get("/jobs")).text()
        assert first.count("data-job-id=") == 50 and "j000" in first and "j050" not in first
        next_url = (
            first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        )
        assert "after=" in next_url
        second = await (await c.get(next_url)).text()
        assert "j050" in second and "j000" not in second
        found = await (await c.get("/jobs?q=needle")).text()
        assert found.count("data-job-id=") == 1 and "other" in found
        by_id = await (await c.get("/jobs?q=j11")).text()
        assert by_id.count("data-job-id=") == 10

    run_app(daemon.home, check)


def test_job_actions_retry_cancel_and_purge(daemon):
    _dead_job(daemon)
    daemon.cli("add", "--id", "p1", "--", "true")

    async def check(c):
        response = await c.post("/job/d1/retry", headers=SAME_ORIGIN, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/job/d1?done=")
        assert _state(daemon, "d1") == "pending"
        response = await c.post("/job/p1/cancel", headers=SAME_ORIGIN, allow_redirects=False)
        assert response.status == 303 and _state(daemon, "p1") == "canceled"
        refused = await c.post("/job/p1/purge", headers=SAME_ORIGIN)
        assert refused.status == 409
        await c.post("/job/d1/cancel", headers=SAME_ORIGIN, allow_redirects=False)

    run_app(daemon.home, check)
    _dead_job(daemon, "d2")

    async def purge(c):
        response = await c.post("/job/d2/purge", headers=SAME_ORIGIN, allow_redirects=False)
        assert response.status == 303
        with daemon.client() as client:
            assert "d2" not in [job["id"] for job in client.list_jobs()]

    run_app(daemon.home, purge)


def test_bulk_retry_shows_the_count_then_acts(daemon):
    with daemon.client() as client:
        client.enqueue(
            *(
                {"id": f"b{i}", "command": "exit 1", "max_retries": 0, "queue": "bulk"}
                for i in range(7)
            )
        )
        client.scale_workers(2)
        client.wait([f"b{i}" for i in range(7)], timeout=30)
        client.scale_workers(0)

    async def check(c):
        confirm = await (await c.get("/jobs/bulk?action=retry&state=dead&queue=bulk")).text()
        assert "<strong>7</strong> job(s)" in confirm and "Retry 7 job(s)" in confirm
        response = await c.post(
            "/jobs/bulk", data={"action": "retry", "state": "dead", "queue": "bulk"},
            headers=SAME_ORIGIN, allow_redirects=False,
        )  # fmt: skip
        assert response.status == 303 and "retried+7" in response.headers["Location"]
        with daemon.client() as client:
            assert client.status()["jobs"]["pending"] == 7
        response = await c.post(
            "/jobs/bulk", data={"action": "cancel", "state": "pending"}, headers=SAME_ORIGIN,
            allow_redirects=False,
        )  # fmt: skip
        assert "canceled+7" in response.headers["Location"]
        refused = await c.get("/jobs/bulk?action=cancel&state=completed")
        assert refused.status == 400

    run_app(daemon.home, check)


def test_queue_schedule_and_fleet_actions(daemon):
    with daemon.client() as client:
        client.schedule_add("tick", "* * * * *", {"command": "true"})

    async def check(c):
        await c.post(
            "/queues/mail/pause", headers=SAME_ORIGIN, data={"back": "/"}, allow_redirects=False
        )
        with daemon.client() as client:
            [mail] = [q for q in client.queue_list() if q["name"] == "mail"]
            assert mail["paused"]
        await c.post(
            "/queues/mail/set", headers=SAME_ORIGIN, data={"concurrency": "3", "priority": "2"}
        )
        await c.post("/queues/mail/resume", headers=SAME_ORIGIN)
        await c.post("/schedules/tick/pause", headers=SAME_ORIGIN)
        ran = await c.post("/schedules/tick/run", headers=SAME_ORIGIN, allow_redirects=False)
        assert ran.status == 303
        response = await c.post(
            "/fleet/scale", headers=SAME_ORIGIN, data={"count": "2"}, allow_redirects=False
        )
        assert response.status == 303
        with daemon.client() as client:
            [mail] = [q for q in client.queue_list() if q["name"] == "mail"]
            assert (mail["paused"], mail["concurrency"], mail["priority"]) == (False, 3, 2)
            [tick] = client.schedule_list()
            assert tick["paused"] and tick["last_job"].startswith("tick@")  # run while paused
            assert client.get_job(tick["last_job"])["command"] == "true"
            assert client.status()["workers"]["target"] == 2

    run_app(daemon.home, check)


def test_the_job_page_shows_the_spec_with_secret_looking_values_hidden(daemon, workdir):
    with daemon.client() as client:
        env = {"API_TOKEN": "tok-value-1234", "MODE": "fast-mode"}
        client.enqueue({"id": "envjob", "command": "true", "env": env}, cwd=str(workdir))

    async def check(c):
        text = await (await c.get("/job/envjob")).text()
        assert str(workdir) in text and "fast-mode" in text and "API_TOKEN" in text
        assert "tok-value-1234" not in text
        shown = await (await c.get("/job/envjob?secrets=show")).text()
        assert "tok-value-1234" in shown

    run_app(daemon.home, check)


def test_state_changes_need_a_same_origin_request(daemon):
    _dead_job(daemon)

    async def check(c):
        for headers in ({}, {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
                        {"Sec-Fetch-Site": "none"}):  # fmt: skip
            response = await c.post("/job/d1/retry", headers=headers)
            assert response.status == 403, headers
        assert (await c.get("/job/d1/retry")).status in (404, 405)  # GET never acts
        assert _state(daemon, "d1") == "dead"

    run_app(daemon.home, check)


def test_read_only_hides_actions_and_refuses_them(daemon):
    _dead_job(daemon)

    async def check(c):
        for path in ("/", "/job/d1", "/dlq", "/queues", "/schedules", "/jobs?state=dead"):
            text = await (await c.get(path)).text()
            assert 'method="post"' not in text, path
            assert "read-only" in text
        response = await c.post("/job/d1/retry", headers=SAME_ORIGIN)
        assert response.status == 403 and "read-only" in await response.text()
        assert _state(daemon, "d1") == "dead"

    run_app(daemon.home, check, Guard(read_only=True))


def test_a_token_needs_a_login_then_a_strict_cookie(daemon):
    _dead_job(daemon)

    async def check(c):
        response = await c.get("/jobs", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login")
        assert (await c.get("/api/snapshot")).status == 401
        wrong = await c.post("/login", data={"token": "nope"}, headers=SAME_ORIGIN)
        assert wrong.status == 403
        response = await c.post(
            "/login", data={"token": TOKEN, "next": "//evil.example/"}, headers=SAME_ORIGIN,
            allow_redirects=False,
        )  # fmt: skip
        assert response.headers["Location"] == "/"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        assert (await c.get("/jobs")).status == 200  # the test client keeps the cookie
        # A program that is no browser sends the token, and no Sec-Fetch-Site.
        c.session.cookie_jar.clear()
        bad = await c.post("/job/d1/retry", headers={"Authorization": "Bearer wrong-token"})
        assert bad.status == 403
        good = await c.post(
            "/job/d1/retry", headers={"Authorization": f"Bearer {TOKEN}"}, allow_redirects=False
        )
        assert good.status == 303 and _state(daemon, "d1") == "pending"

    run_app(daemon.home, check, Guard(token=TOKEN))


def test_a_foreign_host_name_is_refused_on_loopback(daemon):
    async def check(c):
        response = await c.get("/", headers={"Host": "rebound.example:8765"})
        assert response.status == 421
        assert (await c.get("/", headers={"Host": "localhost:8765"})).status == 200

    run_app(daemon.home, check)


def test_events_carry_a_snapshot_then_job_changes(daemon):
    async def check(c):
        response = await c.get("/events")
        assert response.headers["Content-Type"].startswith("text/event-stream")

        async def next_frame() -> dict:
            while True:
                line = (await response.content.readline()).decode()
                if line.startswith("data: "):
                    return json.loads(line[6:])

        frame = await next_frame()
        while frame["type"] != "snapshot":  # "down" until the stream is up
            frame = await next_frame()
        with daemon.client() as client:
            client.enqueue({"id": "live1", "command": "true"})
        while frame["type"] != "jobs":
            frame = await next_frame()
        assert frame["jobs"][0]["id"] == "live1"
        response.close()

    run_app(daemon.home, check)


def test_secret_looking_names():
    for name in ("AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "DB_PASSWORD", "API_KEY", "SSH_KEY"):
        assert looks_secret(name), name
    for name in ("PATH", "HOME", "LANG", "KEYBOARD_LAYOUT"):
        assert not looks_secret(name), name


def test_the_command_refuses_a_public_address_without_a_token(daemon):
    result = subprocess.run(
        [sys.executable, "-m", "queuectl_client.cli.main", "web", "--listen", "0.0.0.0:0"],
        capture_output=True, text=True, env=daemon.env(), timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "not loopback" in result.stderr


def test_the_command_prints_its_url_and_stops_on_sigterm(daemon):
    import urllib.request

    web = WebProcess(daemon)
    try:
        with urllib.request.urlopen(web.url + "/queues", timeout=10) as response:
            assert response.status == 200
    finally:
        assert web.stop() == 0
    assert COOKIE  # the name the login sets


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    from test_systemd import UNITS, verify

    stub = tmp_path / "queuectl"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = (UNITS / "queuectl-web.service").read_text()
    assert "ExecStart=/usr/local/bin/queuectl " in text and " web " in text
    (tmp_path / "queuectl-web.service").write_text(
        text.replace("ExecStart=/usr/local/bin/queuectl ", f"ExecStart={stub} ")
    )
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    verify([str(tmp_path / "queuectl-web.service")], user=False, runtime_dir=runtime)


def test_a_waiting_job_says_why_it_has_not_started(daemon):
    with daemon.client() as client:
        client.queue_pause("held")
        client.enqueue({"id": "w1", "command": "true", "queue": "held"})

    async def check(c):
        text = await (await c.get("/job/w1")).text()
        assert "Why it has not started" in text
        assert "queue held is paused" in text and "there are no workers" in text

    run_app(daemon.home, check)


def test_the_hour_chart_scales_each_minute_to_the_busiest():
    from queuectl_client.web.history import bars, totals

    per_minute = [{"start": "2026-01-02T03:04:00.000Z", "completed": 0, "failed": 0}] * 60
    per_minute = [*per_minute[:57], {**per_minute[0], "completed": 1, "failed": 1},
                  per_minute[0], {**per_minute[0], "completed": 2}]  # fmt: skip
    drawn = bars(per_minute, width=600, height=60)
    assert len(drawn) == 60 and totals(per_minute) == (3, 1)
    assert drawn[-1]["done_h"] == 60.0 and drawn[-1]["fail_h"] == 0.0  # the busiest
    assert (drawn[-3]["done_h"], drawn[-3]["fail_h"], drawn[-2]["done_h"]) == (30.0, 30.0, 0.0)


def test_the_overview_charts_the_hour_from_the_daemons_history(daemon):
    # Jobs that ended before the dashboard started are on its chart too.
    with daemon.client() as client:
        client.enqueue({"id": "c1", "command": "true"})
        client.scale_workers(1)
        client.wait(["c1"], timeout=20)

    async def check(c):
        text = await (await c.get("/")).text()
        assert '<svg id="throughput"' in text and "1 completed, 0 failed" in text

    run_app(daemon.home, check)
