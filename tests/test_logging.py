"""The daemon's log: one line per event that matters, text or JSON, never per poll."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil

from queuectld.telemetry import logsetup
from tests.conftest import ROOT, wait_for


def json_lines(daemon) -> list[dict]:
    lines = [line for line in daemon.log_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is JSON, or this raises


def events(entries: list[dict], name: str, **match) -> list[dict]:
    return [
        e
        for e in entries
        if e.get("event") == name and all(e.get(k) == v for k, v in match.items())
    ]


def test_json_log_has_one_line_for_each_event_with_its_fields(daemon_factory):
    daemon = daemon_factory(workers=1, extra=("--log-format", "json", "--log-level", "info"))
    client = daemon.client()
    client.config_set("backoff-base", 1)
    client.enqueue({"id": "good", "command": "echo fine"})
    client.enqueue({"id": "bad", "command": "exit 3", "max_retries": 1})
    assert client.wait(["good", "bad"], timeout=30)["states"] == {
        "good": "completed",
        "bad": "dead",
    }
    worker = psutil.Process(daemon.pid).children()[0]
    worker.kill()
    wait_for(lambda: len(events(json_lines(daemon), "worker_spawned")) == 2, what="a new worker")
    assert daemon.cli("show", "nope").returncode == 1
    assert daemon.stop() == 0

    entries = json_lines(daemon)
    for entry in entries:
        assert {"ts", "level", "logger", "msg"} <= set(entry), entry
        assert entry["level"] in ("info", "warning", "error")
    [started] = events(entries, "daemon_started")
    assert started["pid"] == started["pid"] and started["workers"] == 1
    assert events(entries, "job_started", job="good", attempt=1)
    [done] = events(entries, "job_completed", job="good")
    assert done["attempt"] == 1 and done["exit_code"] == 0 and done["duration"] >= 0
    [failed] = events(entries, "job_failed", job="bad")
    assert failed["attempt"] == 1 and failed["exit_code"] == 3 and failed["level"] == "warning"
    assert failed["retry_in"] == 1
    [dead] = events(entries, "job_dead", job="bad")
    assert dead["attempt"] == 2 and dead["exit_code"] == 3 and dead["level"] == "error"
    assert "moved to the DLQ" in dead["msg"]
    [died] = events(entries, "worker_died")
    assert died["pid"] == worker.pid and died["status"] == "killed by SIGKILL"
    [refused] = events(entries, "request_refused")
    assert refused["op"] == "get_job" and refused["code"] == "not_found"
    assert refused["client"].startswith("pid ")
    assert events(entries, "config_set", key="backoff-base")
    assert events(entries, "daemon_stopping") and events(entries, "daemon_stopped")
    assert entries[-1]["event"] == "daemon_stopped"


def test_no_line_per_poll_or_heartbeat_at_the_default_level(daemon_factory):
    daemon = daemon_factory(workers=1, extra=("--log-level", "info"))
    client = daemon.client()
    client.enqueue({"id": "slow", "command": "sleep 3; echo done"})
    wait_for(lambda: client.get_job("slow")["state"] == "processing", what="the job to start")
    lines_before = len(daemon.log_text().splitlines())
    # `logs -f` polls the daemon every 0.2 s, status/wait are asked repeatedly.
    follow = daemon.cli("logs", "slow", "-f", timeout=30)
    assert follow.stdout == "done\n"
    for _ in range(20):
        client.status()
        client.wait(["slow"], timeout=0.01)
    time.sleep(1)  # idle: the dispatcher sleeps on its timer, nothing is logged
    new = daemon.log_text().splitlines()[lines_before:]
    assert len(new) == 1, new  # only "job slow completed"
    assert "job slow completed" in new[0]


def test_text_format_and_log_level(daemon_factory):
    daemon = daemon_factory(workers=1, extra=("--log-level", "warning"))
    client = daemon.client()
    client.enqueue({"id": "fails", "command": "exit 2", "max_retries": 0})
    client.enqueue({"id": "fine", "command": "true"})
    client.wait(["fails", "fine"], timeout=20)
    daemon.stop()
    lines = daemon.log_text().splitlines()
    assert lines, "the dead job is an error and must be logged"
    pattern = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (WARNING|ERROR) queuectld\S*: ")
    for line in lines:
        assert pattern.match(line), line
    assert any("job fails is dead after 1 attempt(s): exit code 2" in line for line in lines)
    assert not any("fine" in line for line in lines)  # a completed job is info


def test_journal_gets_syslog_priorities_instead_of_timestamps(tmp_path, monkeypatch):
    with open(tmp_path / "journal", "w+") as stream:
        info = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        logsetup.configure("info", "text", stream)
        try:
            import logging

            logging.getLogger("queuectld.test").info("hello %s", "journal")
            logging.getLogger("queuectld.test").error("bad")
            logging.getLogger("queuectld.test").debug("hidden")
        finally:
            logsetup.configure("warning", "text", io.StringIO())
        stream.seek(0)
        assert stream.read().splitlines() == [
            "<6>queuectld.test: hello journal",
            "<3>queuectld.test: bad",
        ]


def test_startup_errors_are_one_line_in_the_chosen_format(home):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = [sys.executable, "-m", "queuectld", "--home", str(home)]
    bad = subprocess.run(
        [*run, "--metrics", "localhost:http"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2
    assert bad.stderr == "queuectld: --metrics: port 'http' is not a number\n"
    bad_format = subprocess.run(
        [*run, "--log-format", "xml"], capture_output=True, text=True, env=env
    )
    assert bad_format.returncode == 2
    assert bad_format.stderr.startswith("queuectld: argument --log-format: invalid choice: 'xml'")
    assert len(bad_format.stderr.splitlines()) == 1
    # A second daemon on the same home refuses; in JSON the refusal is JSON too.
    first = subprocess.Popen([*run], stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for(lambda: (home / "queuectld.sock").exists(), what="the first daemon")
        second = subprocess.run(
            [*run, "--log-format", "json"], capture_output=True, text=True, env=env, timeout=30
        )
        assert second.returncode == 1
        [line] = second.stderr.splitlines()
        entry = json.loads(line)
        assert entry["event"] == "startup_failed" and "already running" in entry["msg"]
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
