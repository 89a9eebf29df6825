"""Bounds: every setting has a range, the fleet has a maximum, and what a client
can make the daemon hold (schedules, queues, waiters, connections) is limited.

Each refusal is one line naming the limit, and a value stored by an older
release that is out of range today neither breaks the daemon nor the CLI.
"""

from __future__ import annotations

import resource
import sqlite3
import threading
import time

import pytest

from protocol.errors import ErrorCode, ProtocolError
from queuectld.config import SETTINGS
from queuectld.network.limits import FILES_KEPT_BACK
from tests.conftest import wait_for
from tests.test_cli import one_line_error


def store_raw_setting(daemon, key: str, value: str) -> None:
    """Write a setting behind the daemon's back, as an older release could have."""
    daemon.stop()
    with sqlite3.connect(daemon.home / "queuectl.db") as db:
        db.execute("INSERT OR REPLACE INTO config (key, value) VALUES (?, ?)", (key, value))
    db.close()
    daemon.start()


# -- settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("max-command-bytes", "99999999999999999999999", "out of range (1 to 131072)"),
        ("kill-grace", "1e10", "out of range (0 to 3600)"),
        ("max-retries", "-3", "out of range (0 to 1000)"),
        ("max-retries", "3.0", "expected a whole number"),
        ("backoff-base", "nan", "expected a number"),
        ("client-timeout", "0", "out of range (0.1 to 86400)"),
        pytest.param("max-batch", "9" * 5000, "out of range", id="max-batch-5000-digits"),
    ],
)
def test_a_setting_out_of_its_range_is_refused_by_name(daemon, key, value, words):
    result = daemon.cli("config", "set", key, value)
    assert result.returncode == 1
    line = one_line_error(result)
    assert key in line and words in line, line
    assert daemon.cli_json("config", "get", key)["value"] == SETTINGS[key].default


@pytest.mark.parametrize(
    "key, text, value",
    [
        ("max-retries", " +7 ", 7),
        ("max-retries", "0", 0),
        ("backoff-base", "3", 3.0),
        ("backoff-base", "2.5", 2.5),
        ("backoff-max", "1e3", 1000.0),
        ("kill-grace", ".5", 0.5),
    ],
)
def test_the_text_forms_a_setting_reads(key, text, value):
    parsed = SETTINGS[key].parse(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["3.0", "1e3", "0x10", "1_000", "", "True"])
def test_an_integer_setting_takes_only_digits(text):
    with pytest.raises(ValueError, match="whole number"):
        SETTINGS["max-retries"].parse(text)


def test_a_negative_value_is_a_value_not_an_option(daemon):
    result = daemon.cli("config", "set", "max-retries", "-3")
    assert "No such option" not in result.stderr
    assert "max-retries: -3 is out of range (0 to 1000)" in one_line_error(result)
    assert daemon.cli_json("config", "set", "max-retries", "-0") == {
        "key": "max-retries",
        "value": 0,
    }


def test_a_stored_value_out_of_range_falls_back_to_the_default(daemon):
    store_raw_setting(daemon, "max-command-bytes", "99999999999999999999999")
    got = daemon.cli("config", "get", "max-command-bytes")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "131072 (from the default; the stored value is refused)"
    listed = daemon.cli_json("config", "list")["max-command-bytes"]
    assert listed["value"] == 131072 and "refused" in listed["source"]
    assert daemon.cli("config", "list").returncode == 0
    assert daemon.log_text().count("setting max-command-bytes: stored value") == 1
    # Setting it again stores a good value, and the value is simply the stored one.
    daemon.cli("config", "set", "max-command-bytes", "1000")
    assert daemon.cli_json("config", "get", "max-command-bytes") == {
        "key": "max-command-bytes",
        "value": 1000,
        "scope": "cluster",
    }


# -- what a client can make the daemon keep -------------------------------------


def refused(call) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        call()
    return caught.value


def test_schedules_are_bounded(daemon):
    with daemon.client() as client:
        client.config_set("max-schedules", "2")
        for name in ("a", "b"):
            client.schedule_add(name, "@daily", {"command": "true"})
        error = refused(lambda: client.schedule_add("c", "@daily", {"command": "true"}))
        assert error.code == ErrorCode.TOO_LARGE
        assert error.message == ("schedule_add: there are already 2 schedules (max-schedules is 2)")
        client.schedule_add("b", "@hourly", {"command": "true"}, replace=True)
        client.schedule_remove("a")
        client.schedule_add("c", "@daily", {"command": "true"})


def test_queues_are_bounded_however_they_are_created(daemon):
    with daemon.client() as client:
        client.config_set("max-queues", "2")
        client.queue_set("a", concurrency=1)
        client.queue_pause("b")
        for create in (
            lambda: client.queue_set("c", priority=1),
            lambda: client.queue_pause("c"),
            lambda: client.queue_resume("c"),
        ):
            error = refused(create)
            assert error.code == ErrorCode.TOO_LARGE
            assert "there are already 2 queues with settings (max-queues is 2)" in error.message
        client.queue_set("a", priority=3)
        client.queue_resume("b")
        assert [q["name"] for q in client.queue_list()] == ["a", "b"]


def test_a_queue_hook_is_bounded_like_the_on_finish_setting(daemon):
    with daemon.client() as client:
        error = refused(lambda: client.queue_set("q", on_finish="x" * (128 * 1024 + 1)))
        assert error.code == ErrorCode.TOO_LARGE
        assert error.message == "queue_set: on_finish must be at most 131072 bytes long"
        assert client.queue_list() == []
        error = refused(lambda: client.config_set("on-finish", "x" * (128 * 1024 + 1)))
        assert error.code == ErrorCode.BAD_REQUEST
        assert error.message == "on-finish: must be at most 131072 bytes long"


def holding(call) -> threading.Thread:
    """Make `call` in a thread, again whenever it is refused as busy (by a probe)."""

    def hold() -> None:
        while True:
            try:
                call()
                return
            except ProtocolError as exc:
                assert exc.code == ErrorCode.UNAVAILABLE, exc
                time.sleep(0.01)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread


def test_waits_held_at_once_are_bounded(daemon):
    with daemon.client() as client:
        client.config_set("max-waits", "1")
        client.enqueue({"id": "later", "command": "true", "delay": 600})
        client.enqueue({"id": "gone", "command": "true"})
        client.cancel("gone")
    first = holding(lambda: daemon.client().call("wait", ids=["later"], timeout=3))
    with daemon.client() as client:
        wait_for(lambda: _busy(client, "wait", ids=["later"], timeout=0), what="a held wait")
        error = refused(lambda: client.call("wait", ids=["later"], timeout=1))
        assert error.code == ErrorCode.UNAVAILABLE
        assert error.message == (
            "1 wait requests are waiting already (max-waits is 1); try again later"
        )
        # A wait that has nothing to wait for is answered, never refused.
        assert client.call("wait", ids=["gone"])["done"] is True
        first.join(10)
        assert client.call("wait", ids=["later"], timeout=0.1)["done"] is False


def test_logs_followers_at_once_are_bounded(daemon):
    with daemon.client() as client:
        client.config_set("max-log-follows", "1")
        client.enqueue({"id": "quiet", "command": "sleep 30"})
        client.scale_workers(1)
        wait_for(lambda: client.get_job("quiet")["state"] == "processing", what="a running job")
    first = holding(lambda: daemon.client().logs("quiet", wait=3))
    with daemon.client() as client:
        wait_for(lambda: _busy(client, "logs", id="quiet", wait=0.01), what="a follower")
        error = refused(lambda: client.logs("quiet", wait=1))
        assert error.code == ErrorCode.UNAVAILABLE
        assert "(max-log-follows is 1)" in error.message
        assert client.logs("quiet")["running"] is True  # no wait: no slot
        first.join(10)
        assert client.logs("quiet", wait=0.1)["running"] is True


def _busy(client, op: str, **args) -> bool:
    """True once the daemon refuses `op` as busy (another request holds the slot)."""
    try:
        client.call(op, **args)
    except ProtocolError as exc:
        return exc.code == ErrorCode.UNAVAILABLE
    return False


@pytest.mark.parametrize(
    "args",
    [
        ("worker", "start", "--count", "99999999999999999999999"),
        ("enqueue", "--command", "true", "--priority", "99999999999999999999999"),
    ],
)
def test_a_number_too_large_to_send_is_one_line(daemon, args):
    result = daemon.cli(*args)
    assert result.returncode == 2  # refused by the client: it cannot be sent
    assert "is out of range: integers must be from" in one_line_error(result)


def test_one_wait_takes_at_most_max_batch_jobs(daemon):
    with daemon.client() as client:
        client.config_set("max-batch", "2")
        client.enqueue({"id": "a", "command": "true"})
        error = refused(lambda: client.call("wait", ids=["a", "b", "c"], timeout=0))
        assert error.code == ErrorCode.TOO_LARGE
        assert error.message == "wait: 3 jobs exceed max-batch 2"
        assert client.call("wait", ids=["a", "a", "a"], timeout=0)["done"] is False


def test_connections_fit_the_open_file_limit(daemon_factory):
    # The daemon inherits the limit; this process gets its own back at once.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (200, hard))
    try:
        daemon = daemon_factory(workers=3)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    room = 200 - FILES_KEPT_BACK - 3  # a socket for each worker
    got = daemon.cli("config", "get", "max-connections")
    assert got.stdout.strip() == f"{room} (from the open-file limit (ulimit -n))"
    assert daemon.log_text().count("more than the open-file limit (200) leaves room for") == 1
    result = daemon.cli("config", "set", "max-connections", "1000")
    assert result.returncode == 1
    assert one_line_error(result) == (
        "queuectl: too_large: max-connections: 1000 is more than the open-file limit "
        f"leaves room for (ulimit -n is 200: at most {room} connections)"
    )
    assert daemon.cli_json("config", "set", "max-connections", str(room))["value"] == room
    assert daemon.cli("config", "get", "max-connections").stdout.strip() == str(room)
