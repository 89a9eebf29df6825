"""The dashboard in a real browser: Debian's chromium driven by playwright.

Each test runs `queuectl web` as a process against a daemon in a temporary home,
as a user would, and checks what the page shows and what the daemon did. The
screenshots in docs/screenshots/ are taken here, so they show what the code
renders: every run takes them, and `QUEUECTL_SCREENSHOTS=1 python -m pytest
tests/test_web_browser.py` writes them over the ones in docs/ (other runs keep
them in a temporary directory, so a test run leaves the checkout as it was).
Skipped only where chromium or playwright is not installed (.ci/run installs
both).
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading

import pytest
from conftest import ROOT, wait_for
from web_tools import WebProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)

expect = sync_api.expect
pytestmark = pytest.mark.browser
DOCS_SHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 8000


@pytest.fixture(scope="module")
def browser():
    # Never `playwright install`: this is the system's chromium.
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    context.close()


@pytest.fixture
def web(daemon):
    started: list[WebProcess] = []

    def start(*args: str) -> WebProcess:
        process = WebProcess(daemon, *args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory):
    if os.environ.get("QUEUECTL_SCREENSHOTS") == "1":
        return DOCS_SHOTS
    return tmp_path_factory.mktemp("screenshots")


def shot(page, name: str, where) -> None:
    where.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(where / f"{name}.png"), full_page=True)


def dead_jobs(daemon, *ids: str, queue: str = "default", output: str = "failing") -> None:
    with daemon.client() as client:
        client.enqueue(
            *({"id": i, "command": f"echo '{output}'; exit 3", "max_retries": 0, "queue": queue}
              for i in ids)
        )  # fmt: skip
        client.scale_workers(2)
        client.wait(list(ids), timeout=30)
        client.scale_workers(0)
        assert {client.get_job(i)["state"] for i in ids} == {"dead"}


def state_of(daemon, job_id: str) -> str:
    with daemon.client() as client:
        return client.get_job(job_id)["state"]


def test_the_overview_shows_the_counts_of_a_seeded_queue(daemon, web, page, shots_dir):
    dead_jobs(daemon, "old-1", "old-2", queue="reports")
    with daemon.client() as client:
        client.enqueue(
            *({"id": f"s{i}", "command": "make report", "queue": "seeded"} for i in range(3))
        )
        client.enqueue({"id": "m1", "command": "true", "queue": "reports"})
    page.goto(web().url + "/")
    row = page.locator('tr[data-queue="seeded"]')
    assert row.locator('[data-count="pending"]').inner_text() == "3"
    assert page.locator('tr[data-queue="reports"] [data-count="dead"]').inner_text() == "2"
    assert page.locator('[data-total="pending"]').inner_text() == "4"
    page.locator("#live.on").wait_for()
    # Some attempts end while the dashboard watches, for the hour's chart; the
    # seeded queue is paused and keeps its three.
    with daemon.client() as client:
        client.queue_pause("seeded")
        client.enqueue(*({"command": "true", "queue": "reports"} for _ in range(8)))
        client.enqueue({"id": "bad", "command": "exit 1", "max_retries": 0, "queue": "reports"})
        client.scale_workers(1)
        client.wait(["bad"], timeout=20)
        wait_for(lambda: client.status()["jobs"]["pending"] == 3, what="reports to drain")
    expect(page.locator('[data-total="completed"]')).to_have_text("9")
    page.reload()
    expect(page.locator("#throughput rect.done[height]").first).to_be_attached()
    assert page.locator('tr[data-queue="seeded"] [data-count="pending"]').inner_text() == "3"
    shot(page, "overview", shots_dir)
    page.goto(page.url.rstrip("/") + "/queues")
    shot(page, "queues", shots_dir)


def test_a_job_enqueued_from_the_cli_appears_without_a_reload(daemon, web, page, shots_dir):
    page.goto(web().url + "/jobs")
    page.locator("#live.on").wait_for()
    page.evaluate("window.stillTheSamePage = true")
    result = daemon.cli("add", "--id", "from-cli", "--queue", "mail", "--", "echo hello")
    assert result.returncode == 0, result.stderr
    row = page.locator('tr[data-job-id="from-cli"]')
    row.wait_for(timeout=5000)
    assert "pending" in row.inner_text() and "echo hello" in row.inner_text()
    assert page.evaluate("window.stillTheSamePage") is True
    # Counts on the overview follow the stream too.
    page.goto(page.url.replace("/jobs", "/"))
    page.locator("#live.on").wait_for()
    daemon.cli("add", "--id", "second", "--queue", "mail", "--", "true")
    # Waits with locators: the page's CSP forbids evaluating strings.
    expect(page.locator('tr[data-queue="mail"] [data-count="pending"]')).to_have_text(
        "2", timeout=5000
    )
    page.goto(page.url.rstrip("/") + "/jobs")
    shot(page, "jobs", shots_dir)


def test_a_dead_job_is_retried_with_a_click(daemon, web, page, shots_dir):
    dead_jobs(daemon, "flaky", output="connection refused")
    page.goto(web().url + "/job/flaky")
    assert page.locator("#job-state").inner_text() == "dead"
    shot(page, "job", shots_dir)
    page.click("#retry")
    expect(page.locator("#job-state")).to_have_text("pending")
    assert state_of(daemon, "flaky") == "pending"


def test_bulk_retry_of_a_filter_shows_the_count_first(daemon, web, page, shots_dir):
    dead_jobs(daemon, "b1", "b2", "b3", "b4", queue="bulk")
    dead_jobs(daemon, "elsewhere", queue="other")
    page.goto(web().url + "/dlq")
    shot(page, "dlq", shots_dir)
    page.goto(page.url.replace("/dlq", "/jobs?state=dead&queue=bulk"))
    page.click("text=Retry all…")
    assert "4 job(s)" in page.locator("#bulk-count").inner_text()
    with daemon.client() as client:
        assert client.status()["jobs"]["dead"] == 5  # nothing done before the confirmation
    page.click("#confirm")
    assert "retried 4 job(s)" in page.locator(".done").inner_text()
    assert [state_of(daemon, i) for i in ("b1", "b4", "elsewhere")] == [
        "pending",
        "pending",
        "dead",
    ]


def test_pause_from_the_browser_stops_dispatch(daemon, web, page):
    daemon.cli("add", "--id", "first", "--queue", "held", "--", "true")
    page.goto(web().url + "/")
    page.click('button[data-action="pause-held"]')
    page.locator('tr[data-queue="held"] [data-field="paused"]', has_text="paused").wait_for()
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli("add", "--id", "control", "--", "true")
    with daemon.client() as client:
        wait_for(lambda: client.get_job("control")["state"] == "completed", 20, what="control job")
    queues = daemon.cli_json("queue", "list")
    held = next(
        q for q in (queues if isinstance(queues, list) else queues["queues"]) if q["name"] == "held"
    )
    assert held["paused"] is True
    assert daemon.cli_json("show", "first")["state"] == "pending"
    page.click('button[data-action="resume-held"]')
    with daemon.client() as client:
        wait_for(lambda: client.get_job("first")["state"] == "completed", 20, what="resumed job")


def test_read_only_has_no_buttons_and_refuses_a_forged_post(daemon, web, page):
    dead_jobs(daemon, "kept")
    base = web("--read-only").url
    for path in ("/", "/jobs?state=dead", "/job/kept", "/dlq", "/queues", "/schedules"):
        page.goto(base + path)
        assert page.locator("form[method=post]").count() == 0, path
        # The jobs filter is a GET form; no other button, and no link to an action.
        assert page.locator("main form:not(.filters) button").count() == 0, path
        assert page.locator("a.button").count() == 0, path
    status = page.evaluate("fetch('/job/kept/retry', {method: 'POST'}).then(r => r.status)")
    assert status == 403
    assert state_of(daemon, "kept") == "dead"


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Another site on another port of the same host: a form that posts to the
    dashboard and submits itself."""

    target = ""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = (
            f'<form id="f" method="post" action="{self.target}/job/victim/retry"></form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_a_cross_origin_form_post_is_refused(daemon, web, page):
    dead_jobs(daemon, "victim")
    _Attacker.target = web().url
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        page.wait_for_url(f"{_Attacker.target}/job/victim/retry")
        assert "refused: a request from another site (same-site)" in page.content()
    finally:
        server.shutdown()
        server.server_close()
    assert state_of(daemon, "victim") == "dead"


def test_html_in_job_output_shows_as_text(daemon, web, page):
    dead_jobs(daemon, "html", output="<b id=bold>bold</b><img src=x onerror=alert(1)>")
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto(web().url + "/job/html")
    output = page.locator("#output")
    assert "<b id=bold>bold</b>" in output.inner_text()
    assert page.locator("#bold").count() == 0 and page.locator("#output img").count() == 0
    assert "<b id=bold>" in page.locator("pre.command").inner_text()


def test_running_jobs_appear_on_the_overview_as_they_start(daemon, web, page):
    page.goto(web().url + "/")
    page.locator("#live.on").wait_for()
    with daemon.client() as client:
        client.enqueue({"id": "long-one", "command": "sleep 30"})
        client.scale_workers(1)
    expect(page.locator("#running a", has_text="long-one")).to_be_visible(timeout=5000)
    expect(page.locator('[data-workers="busy"]')).to_have_text("1")
    with daemon.client() as client:
        client.cancel("long-one")
    expect(page.locator("#running")).to_contain_text("Nothing is running.", timeout=5000)


def test_the_output_of_a_running_job_is_followed_live(daemon, web, page):
    with daemon.client() as client:
        client.enqueue(
            {"id": "ticker", "command": "for i in 1 2 3 4; do echo tick $i; sleep 0.5; done"}
        )
        client.scale_workers(1)
        wait_for(lambda: client.get_job("ticker")["state"] == "processing", what="ticker to start")
    page.goto(web().url + "/job/ticker")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#output")).to_contain_text("tick 3", timeout=5000)
    assert page.evaluate("window.stillTheSamePage") is True
    # Once it ends, the page shows its final state and every line.
    expect(page.locator("#job-state")).to_have_text("completed", timeout=5000)
    expect(page.locator("#output")).to_contain_text("tick 4")
