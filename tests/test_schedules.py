"""Recurring jobs through a real daemon whose scheduler clock the test controls.

The daemon's hidden --clock ISO-TIME[,SPEED] starts the scheduler's clock at a
chosen time and runs it SPEED times as fast as real time: at speed 60 one real
second is a minute, so firings at chosen minutes are seen within seconds.
Job ids name the fire time (NAME@YYYY-MM-DDTHH:MM:SSZ), which is what the
tests read to know which minutes fired.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import wait_for
from tests.rawwire import connect, request


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def fire_times(client, name: str) -> list[datetime]:
    ids = [j["id"] for j in client.list_jobs() if j["id"].startswith(name + "@")]
    return sorted(utc(i.split("@", 1)[1]) for i in ids)


def marks_between(start: datetime, end: datetime, minutes: int) -> list[datetime]:
    """Every */minutes mark in (start, end]."""
    moment = start.replace(second=0, microsecond=0)
    marks = []
    while moment <= end:
        if moment > start and moment.minute % minutes == 0:
            marks.append(moment)
        moment += timedelta(minutes=1)
    return marks


def test_cron_fires_at_the_right_minutes_and_not_twice_across_a_restart(daemon_factory, workdir):
    ran = workdir / "ran"
    daemon = daemon_factory(workers=2, extra=("--clock", "2030-01-01T10:00:00Z,60"))
    added = daemon.cli(
        "schedule",
        "add",
        "tick",
        "--cron",
        "*/5 * * * *",
        "--",
        f"echo $QUEUECTL_JOB_ID >> {ran}",
    )
    assert added.returncode == 0, added.stderr
    client = daemon.client()
    [schedule] = client.schedule_list()
    created = utc(schedule["created_at"])
    wait_for(lambda: len(fire_times(client, "tick")) >= 2, 30, 0.1, "two firings")
    fired = fire_times(client, "tick")
    # Exactly the */5 marks since the schedule was added: no minute skipped or extra.
    assert fired == marks_between(created, fired[-1], 5)
    assert all(t.minute % 5 == 0 and t.second == 0 for t in fired)
    client.close()

    # Restart 20 s (of scheduler time) after the last firing: nothing is fired again.
    last = fired[-1]
    restart_at = (last + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    daemon.extra = ("--clock", f"{restart_at},60")
    daemon.restart()
    client = daemon.client()
    assert client.schedule_list()[0]["next_fire"] == (last + timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    wait_for(lambda: len(fire_times(client, "tick")) > len(fired), 30, 0.1, "the next firing")
    after = fire_times(client, "tick")
    assert after[: len(fired)] == fired
    assert after[len(fired)] == last + timedelta(minutes=5)
    assert after == marks_between(created, after[-1], 5)
    ids = [f"tick@{t.strftime('%Y-%m-%dT%H:%M:%SZ')}" for t in after]
    wait_for(lambda: client.wait(ids, timeout=10)["done"], 20, 0.1, "the jobs to finish")
    runs = Counter(ran.read_text().split())
    assert set(runs) == set(ids) and max(runs.values()) == 1  # every firing ran, once


def test_missed_firings_follow_the_catch_up_policy(daemon_factory):
    daemon = daemon_factory(workers=0, extra=("--clock", "2030-01-01T10:00:00Z"))
    for policy in ("none", "one", "all"):
        result = daemon.cli(
            "schedule", "add", policy, "--cron", "*/10 * * * *", "--catch-up", policy, "--", "true"
        )
        assert result.returncode == 0, result.stderr
    # The daemon is down from 10:00 to 10:45:30: 10:10, 10:20, 10:30 and 10:40 are missed.
    daemon.extra = ("--clock", "2030-01-01T10:45:30Z")
    daemon.restart()
    client = daemon.client()
    wait_for(lambda: fire_times(client, "one"), 10, 0.1, "the catch-up firing")
    at = [utc(f"2030-01-01T10:{m}:00Z") for m in ("10", "20", "30", "40")]
    assert fire_times(client, "none") == []
    assert fire_times(client, "one") == at[-1:]
    assert fire_times(client, "all") == at
    schedules = {s["name"]: s for s in client.schedule_list()}
    assert {s["next_fire"] for s in schedules.values()} == {"2030-01-01T10:50:00.000Z"}
    assert schedules["all"]["last_job"] == "all@2030-01-01T10:40:00Z"


def test_time_zone_pause_and_resume(daemon_factory):
    # 09:00 in Berlin is 08:00 UTC in winter.
    daemon = daemon_factory(workers=0, extra=("--clock", "2030-01-01T07:59:57Z"))
    for name in ("berlin", "held"):
        result = daemon.cli(
            "schedule", "add", name, "--cron", "0 9 * * *", "--tz", "Europe/Berlin", "--", "true"
        )
        assert result.returncode == 0, result.stderr
    assert daemon.cli("schedule", "pause", "held").returncode == 0
    client = daemon.client()
    wait_for(lambda: fire_times(client, "berlin"), 15, 0.1, "the 09:00 Berlin firing")
    assert fire_times(client, "berlin") == [utc("2030-01-01T08:00:00Z")]
    assert fire_times(client, "held") == []
    resumed = daemon.cli("schedule", "resume", "held")
    assert resumed.returncode == 0, resumed.stderr
    held = {s["name"]: s for s in client.schedule_list()}["held"]
    assert held["next_fire"] == "2030-01-02T08:00:00.000Z"  # the paused firing is not caught up
    listing = daemon.cli("schedule", "list")
    assert "berlin" in listing.stdout and "Europe/Berlin" in listing.stdout
    assert daemon.cli("schedule", "remove", "held").returncode == 0
    assert [s["name"] for s in client.schedule_list()] == ["berlin"]


def test_schedule_input_errors_are_one_line_and_nonzero(daemon):
    cases = [
        (("--cron", "* * *"), "must have 5 fields"),
        (("--cron", "61 * * * *"), "is not valid"),
        (("--cron", "* * * * *", "--tz", "Mars/Olympus"), "unknown time zone"),
    ]
    for options, message in cases:
        result = daemon.cli("schedule", "add", "bad", *options, "--", "true")
        assert result.returncode == 1
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = daemon.cli("schedule", "add", "bad name", "--cron", "* * * * *", "--", "true")
    assert result.returncode == 1 and "schedule name" in result.stderr
    assert daemon.cli("schedule", "add", "ok", "--cron", "@hourly", "--", "true").returncode == 0
    result = daemon.cli("schedule", "add", "ok", "--cron", "@daily", "--", "true")
    assert result.returncode == 1 and "already exists" in result.stderr
    replaced = daemon.cli("schedule", "add", "ok", "--cron", "@daily", "--replace", "--", "true")
    assert replaced.returncode == 0
    result = daemon.cli("schedule", "remove", "nope")
    assert result.returncode == 1 and "no schedule 'nope'" in result.stderr


def test_template_errors_name_the_job_as_a_single_enqueue_does(daemon):
    with daemon.client() as client:
        client.config_set("max-command-bytes", "100")
    sock = connect(daemon.socket)
    try:
        cases = [
            ({"command": "true", "id": "x"}, "invalid_job", "job: field 'id' is not allowed"),
            ({"command": "true", "colour": "red"}, "invalid_job", "job: unknown field 'colour'"),
            ({"command": "x" * 101}, "too_large", "job: command exceeds max-command-bytes 100"),
        ]
        for job, code, start in cases:
            args = {"name": "s", "cron": "@hourly", "job": job}
            error = request(sock, "schedule_add", args)["error"]
            assert error["code"] == code and error["message"].startswith(start), error
    finally:
        sock.close()


@pytest.mark.parametrize(
    "options, message",
    [
        (("--cron", "0 0 31 2 *"), "cron expression '0 0 31 2 *' never matches a date"),
        (("--cron", "0 0 30-31 2 *"), "never matches a date"),
        (("--cron", "0 12 31 4,6,9,11 *"), "never matches a date"),
        (("--cron", "R * * * *"), "random fields (R) are not supported"),
        (("--cron", "0 r * * *"), "random fields (R) are not supported"),
        (("--cron", "1-" + "9" * 30 + " * * * *"), "is not valid"),
        (("--cron", "0 0 * * 5#6"), "is not valid"),
        (("--cron", "0 " * 600 + "*"), "field 'cron' is longer than 1024 bytes"),
        (("--cron", "@daily", "--tz", "Europe/" + "x" * 100), "field 'tz' is longer than 64"),
        (("--cron", "@daily", "--tz", "../../etc/passwd"), "unknown time zone"),
        (("--cron", "@daily", "--tz", "Europe"), "unknown time zone"),
    ],
)
def test_cron_expressions_and_zones_that_cannot_fire_are_bad_requests(daemon, options, message):
    result = daemon.cli("schedule", "add", "never", *options, "--", "true")
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("queuectl: bad_request: ") and message in line, line
    assert daemon.client().schedule_list() == []


def test_daylight_saving_changes_neither_skip_nor_repeat_a_daily_firing():
    from queuectld.engine.schedules import fires_through, next_fire

    def stamp(moment: float) -> str:
        return datetime.fromtimestamp(moment, timezone.utc).strftime("%m-%d %H:%M")

    # Berlin: 02:30 does not exist on 2030-03-31 (it fires when the gap ends, 03:00
    # local), and happens twice on 2030-10-27 (it fires the first time only).
    spring = utc("2030-03-30T12:00:00Z").timestamp()
    fires = [next_fire("30 2 * * *", "Europe/Berlin", spring)]
    fires.append(next_fire("30 2 * * *", "Europe/Berlin", fires[-1]))
    assert [stamp(t) for t in fires] == ["03-31 01:00", "04-01 00:30"]
    autumn = utc("2030-10-26T12:00:00Z").timestamp()
    later = utc("2030-10-28T12:00:00Z").timestamp()
    assert [stamp(t) for t in fires_through("30 2 * * *", "Europe/Berlin", autumn, later, 10)] == [
        "10-27 00:30",
        "10-28 01:30",
    ]


def test_run_now_enqueues_one_job_and_leaves_the_timetable(daemon):
    with daemon.client() as client:
        client.schedule_add("nightly", "0 3 * * *", {"command": "echo ran"})
        client.schedule_pause("nightly")
        [before] = client.schedule_list()
    result = daemon.cli("schedule", "run", "nightly")
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert job_id.startswith("nightly@") and job_id.endswith("Z-now")
    with daemon.client() as client:
        job = client.get_job(job_id)
        assert (job["command"], job["state"]) == ("echo ran", "pending")
        [after] = client.schedule_list()
        assert after["last_job"] == job_id
        assert (after["paused"], after["fired_through"]) == (True, before["fired_through"])
        # A template whose unique key a live job holds adds nothing.
        client.schedule_add("once", "0 3 * * *", {"command": "true", "unique_key": "k"})
        first = client.schedule_run("once")
        again = client.schedule_run("once")
        assert (again["id"], again["existing"], first["existing"]) == (first["id"], True, False)
    missing = daemon.cli("schedule", "run", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        "queuectl: not_found: no schedule 'nope'",
    )
