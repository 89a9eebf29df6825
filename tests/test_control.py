"""Queues, draining, dependencies, unique jobs, re-running, editing, purging and
hooks, through a real daemon."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

from protocol.errors import ProtocolError
from tests.conftest import wait_for
from tests.test_lifecycle import wait_state

# A job that records how many jobs of its kind run at the moment it starts: it
# creates its marker, then counts markers, so the last of k simultaneous jobs to
# start sees k. The maximum seen is the largest number that ever ran at once.
COUNTING_JOB = (
    "touch {dir}/$QUEUECTL_JOB_ID; ls {dir} | wc -l >> {log}; sleep {hold}; "
    "rm {dir}/$QUEUECTL_JOB_ID"
)


def counting_job(workdir, name: str, hold: float = 0.6) -> tuple[str, object]:
    running = workdir / f"{name}-running"
    running.mkdir()
    log = workdir / f"{name}-counts"
    return COUNTING_JOB.format(dir=running, log=log, hold=hold), log


# -- queues -----------------------------------------------------------------------


def test_queue_concurrency_limit_is_respected(daemon, workdir):
    limited, limited_log = counting_job(workdir, "limited")
    free, free_log = counting_job(workdir, "free")
    assert daemon.cli("queue", "set", "limited", "--concurrency", "2").returncode == 0
    ids = []
    for i in range(6):
        ids += daemon.client().enqueue({"id": f"L{i}", "command": limited, "queue": "limited"})
    for i in range(3):
        ids += daemon.client().enqueue({"id": f"F{i}", "command": free, "queue": "free"})
    daemon.cli("worker", "start", "--count", "5")
    assert daemon.cli("wait", *ids, "--timeout", "60").returncode == 0
    limited_counts = [int(n) for n in limited_log.read_text().split()]
    assert max(limited_counts) == 2, limited_counts  # the limit, fully used, never passed
    # The fleet was not held back by the limited queue: the others ran alongside.
    assert max(int(n) for n in free_log.read_text().split()) >= 2
    [queue] = [q for q in daemon.cli_json("queue", "list") if q["name"] == "limited"]
    assert (queue["concurrency"], queue["jobs"]["completed"], queue["running"]) == (2, 6, 0)


def test_pause_stops_new_starts_but_not_running_jobs(daemon, workdir):
    release = workdir / "release"
    daemon.cli("worker", "start", "--count", "2")
    daemon.cli(
        "enqueue",
        "--id",
        "running",
        "--queue",
        "q",
        "--command",
        f"while ! test -f {release}; do sleep 0.05; done",
    )
    wait_state(daemon, "running", "processing")
    paused = daemon.cli("queue", "pause", "q")
    assert paused.returncode == 0 and "paused" in paused.stdout
    daemon.cli("enqueue", "--id", "held", "--queue", "q", "--command", "true")
    daemon.cli("enqueue", "--id", "other", "--queue", "elsewhere", "--command", "true")
    assert daemon.cli("wait", "other", "--timeout", "10").returncode == 0  # a worker was free
    release.touch()
    assert daemon.cli("wait", "running", "--timeout", "10").returncode == 0  # it finished
    time.sleep(1.0)
    assert daemon.client().get_job("held")["state"] == "pending"
    [queue] = [q for q in daemon.cli_json("queue", "list") if q["name"] == "q"]
    assert queue["paused"] is True and queue["jobs"]["pending"] == 1
    assert queue["oldest_due_age"] >= 1.0
    daemon.restart()  # a pause is kept in the store
    daemon.cli("worker", "start", "--count", "1")
    time.sleep(0.5)
    assert daemon.client().get_job("held")["state"] == "pending"
    assert daemon.cli("queue", "resume", "q").returncode == 0
    assert daemon.cli("wait", "held", "--timeout", "10").returncode == 0


def test_higher_queue_priority_runs_first(daemon, workdir):
    order = workdir / "order"
    daemon.cli("queue", "set", "urgent", "--priority", "10")
    for i in range(3):
        daemon.cli(
            "enqueue",
            "--id",
            f"bulk{i}",
            "--queue",
            "bulk",
            "--priority",
            "5",
            "--command",
            f"echo bulk{i} >> {order}",
        )
    daemon.cli(
        "enqueue", "--id", "urgent", "--queue", "urgent", "--command", f"echo urgent >> {order}"
    )
    daemon.cli("worker", "start", "--count", "1")
    assert daemon.cli("wait", "bulk0", "bulk1", "bulk2", "urgent").returncode == 0
    assert order.read_text().split() == ["urgent", "bulk0", "bulk1", "bulk2"]


def test_worker_drain_finishes_running_starts_none_and_survives_restart(daemon, workdir):
    release = workdir / "release"
    daemon.cli("worker", "start", "--count", "2")
    daemon.cli(
        "enqueue", "--id", "busy", "--command", f"while ! test -f {release}; do sleep 0.05; done"
    )
    wait_state(daemon, "busy", "processing")
    drained = daemon.cli("worker", "drain")
    assert drained.returncode == 0 and "1 job(s) running" in drained.stdout
    accepted = daemon.cli("enqueue", "--id", "queued", "--command", "true")
    assert accepted.returncode == 0  # enqueues are still accepted
    assert daemon.cli_json("status")["workers"]["draining"] is True
    release.touch()
    assert daemon.cli("wait", "busy", "--timeout", "10").returncode == 0
    waited = daemon.cli("worker", "drain", "--wait", "--timeout", "5")
    assert waited.returncode == 0 and "0 job(s) running" in waited.stdout
    time.sleep(0.5)
    assert daemon.client().get_job("queued")["state"] == "pending"
    daemon.workers = None
    daemon.restart()
    time.sleep(0.5)
    assert daemon.client().get_job("queued")["state"] == "pending"
    assert daemon.cli("worker", "resume").returncode == 0
    assert daemon.cli("wait", "queued", "--timeout", "10").returncode == 0
    # `worker start` ends a drain too.
    daemon.cli("worker", "drain")
    daemon.cli("enqueue", "--id", "later", "--command", "true")
    daemon.cli("worker", "start", "--count", "1")
    assert daemon.cli("wait", "later", "--timeout", "10").returncode == 0


# -- dependencies ---------------------------------------------------------------------


def test_dependency_chain_where_the_middle_job_dies(daemon, workdir):
    ran = workdir / "ran"
    daemon.cli("enqueue", "--id", "first", "--command", f"echo first >> {ran}")
    daemon.cli(
        "enqueue",
        "--id",
        "middle",
        "--after",
        "first",
        "--max-retries",
        "0",
        "--command",
        f"echo middle >> {ran}; exit 7",
    )
    daemon.cli("enqueue", "--id", "last", "--after", "middle", "--command", f"echo last >> {ran}")
    spec = {"id": "end", "command": f"echo end >> {ran}", "after": ["last", "first"]}
    daemon.cli("enqueue", json.dumps(spec))
    assert daemon.client().get_job("last")["dependencies_left"] == 1
    daemon.cli("worker", "start", "--count", "2")
    # Waiting on the last jobs returns (nothing is left waiting forever), not completed.
    result = daemon.cli("wait", "last", "end", "--timeout", "20")
    assert result.returncode == 1
    assert result.stdout.split("\n")[:2] == ["last: canceled", "end: canceled"]
    assert ran.read_text().split() == ["first", "middle"]
    client = daemon.client()
    assert client.get_job("middle")["state"] == "dead"
    assert client.get_job("last")["last_error"] == "dependency middle ended dead"
    assert client.get_job("end")["last_error"] == "dependency last ended canceled"
    shown = daemon.cli("show", "end")
    assert "after:      last, first" in shown.stdout
    assert "dependency last ended canceled" in shown.stdout


def test_dependencies_wait_for_completion_and_bad_ones_are_rejected(daemon, workdir):
    order = workdir / "order"
    daemon.cli("enqueue", "--id", "slow", "--command", f"sleep 0.5; echo slow >> {order}")
    daemon.cli(
        "enqueue",
        "--id",
        "quick",
        "--after",
        "slow",
        "--priority",
        "9",
        "--command",
        f"echo quick >> {order}",
    )
    daemon.cli("worker", "start", "--count", "3")
    assert daemon.cli("wait", "quick", "--timeout", "10").returncode == 0
    assert order.read_text().split() == ["slow", "quick"]
    unknown = daemon.cli("enqueue", "--command", "true", "--after", "slow,ghost")
    assert unknown.returncode == 1
    assert "dependency 'ghost' does not exist" in unknown.stderr
    cycle = daemon.cli(
        "enqueue",
        '[{"id":"a","command":"true","after":["b"]},{"id":"b","command":"true","after":["a"]}]',
    )
    assert cycle.returncode == 1 and "dependency cycle: a -> b -> a" in cycle.stderr
    assert daemon.cli("show", "a").returncode == 1  # nothing of the batch was kept


# -- unique jobs --------------------------------------------------------------------------


def test_32_concurrent_enqueues_of_one_unique_key_leave_exactly_one_job(daemon):
    barrier = threading.Barrier(32)
    results: list[str] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            with daemon.client() as client:
                client.hello()
                barrier.wait()
                results.extend(client.enqueue({"command": "sleep 30", "unique_key": "nightly"}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 32 and len(set(results)) == 1
    jobs = daemon.client().list_jobs()
    assert [j["id"] for j in jobs] == results[:1]
    assert jobs[0]["unique_key"] == "nightly"


def test_unique_key_on_duplicate_ignore_or_error_and_freed_when_finished(daemon):
    first = daemon.cli("enqueue", "--command", "true", "--unique-key", "k")
    again = daemon.cli("enqueue", "--command", "true", "--unique-key", "k")
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "holds that unique key" in again.stderr
    refused = daemon.cli(
        "enqueue", "--command", "true", "--unique-key", "k", "--on-duplicate", "error"
    )
    assert refused.returncode == 1
    assert f"unique key 'k' is held by job '{first.stdout.strip()}'" in refused.stderr
    daemon.cli("worker", "start", "--count", "1")
    assert daemon.cli("wait", first.stdout.strip()).returncode == 0
    fresh = daemon.cli(
        "enqueue", "--command", "true", "--unique-key", "k", "--on-duplicate", "error"
    )
    assert fresh.returncode == 0 and fresh.stdout != first.stdout


# -- re-running, editing, purging ------------------------------------------------------------


def test_retry_a_finished_job_keeps_its_history(daemon, workdir):
    ran = workdir / "ran"
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli("enqueue", "--id", "again", "--command", f"echo run >> {ran}")
    assert daemon.cli("wait", "again").returncode == 0
    result = daemon.cli("retry", "again")
    assert result.returncode == 0, result.stderr
    assert daemon.cli("wait", "again", "--timeout", "10").returncode == 0
    job = daemon.client().get_job("again")
    assert [r["outcome"] for r in job["history"]] == ["completed", "completed"]
    assert ran.read_text().split() == ["run", "run"]
    daemon.cli("enqueue", "--id", "waiting", "--delay", "60", "--command", "true")
    refused = daemon.cli("retry", "waiting")
    assert refused.returncode == 1 and "it is pending" in refused.stderr
    missing = daemon.cli("retry", "nope")
    assert missing.returncode == 1 and "no job 'nope'" in missing.stderr


def test_edit_a_pending_job_and_a_clear_error_once_it_started(daemon, workdir):
    out = workdir / "out"
    daemon.cli("enqueue", "--id", "draft", "--delay", "3600", "--command", "echo old")
    edited = daemon.cli(
        "edit",
        "draft",
        "--command",
        f"echo new > {out}",
        "--priority",
        "3",
        "--queue",
        "fast",
        "--delay",
        "0",
        "--json",
    )
    assert edited.returncode == 0, edited.stderr
    job = json.loads(edited.stdout)
    assert (job["command"], job["priority"], job["queue"]) == (f"echo new > {out}", 3, "fast")
    daemon.cli("worker", "start", "--count", "1")
    assert daemon.cli("wait", "draft", "--timeout", "10").returncode == 0
    assert out.read_text() == "new\n"
    refused = daemon.cli("edit", "draft", "--priority", "1")
    assert refused.returncode == 1
    assert "cannot edit job 'draft': it is completed" in refused.stderr
    usage = daemon.cli("edit", "draft")
    assert usage.returncode == 2 and "give at least one of" in usage.stderr
    bad_time = daemon.cli("edit", "draft", "--run-at", "soon")
    assert bad_time.returncode == 2 and "not an ISO 8601 time" in bad_time.stderr


def test_edit_is_refused_for_a_running_job(daemon, workdir):
    release = workdir / "release"
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli(
        "enqueue", "--id", "busy", "--command", f"while ! test -f {release}; do sleep 0.05; done"
    )
    wait_state(daemon, "busy", "processing")
    refused = daemon.cli("edit", "busy", "--command", "true")
    assert refused.returncode == 1
    assert "cannot edit job 'busy': it is processing and it has started" in refused.stderr
    release.touch()


def test_dlq_retry_all_of_one_queue_and_purge_old_jobs(daemon):
    daemon.cli("worker", "start", "--count", "2")
    for queue in ("a", "b"):
        daemon.cli(
            "enqueue",
            "--id",
            f"dead-{queue}",
            "--queue",
            queue,
            "--max-retries",
            "0",
            "--command",
            "false",
        )
    daemon.cli("enqueue", "--id", "done", "--command", "echo output")
    daemon.cli("wait", "dead-a", "dead-b", "done", "--timeout", "10")
    retried = daemon.cli("dlq", "retry", "--all", "--queue", "a", "--since", "1h")
    assert retried.returncode == 0 and retried.stdout.split() == ["dead-a"]
    none = daemon.cli("dlq", "retry", "--all", "--since", "2999-01-01T00:00:00Z")
    assert none.returncode == 0 and none.stdout == ""
    log_file = daemon.client().get_job("done")["history"][0]["log"]
    kept = daemon.cli("purge", "--state", "completed", "--older-than", "1h")
    assert kept.returncode == 0 and "purged 0 completed" in kept.stdout
    time.sleep(1.1)
    purged = daemon.cli("purge", "--state", "completed", "--older-than", "1s")
    assert purged.returncode == 0 and "purged 1 completed" in purged.stdout
    assert daemon.cli("show", "done").returncode == 1
    assert log_file and not __import__("os").path.exists(log_file)
    bad = daemon.cli("purge", "--state", "completed", "--older-than", "a week")
    assert bad.returncode == 2 and "is not a duration" in bad.stderr


# -- hooks ----------------------------------------------------------------------------------


def test_on_finish_hooks_get_job_facts_and_never_affect_the_job(daemon, workdir):
    facts = workdir / "facts"
    record = (
        "echo $QUEUECTL_JOB_ID $QUEUECTL_JOB_STATE x$QUEUECTL_EXIT_CODE $QUEUECTL_ATTEMPT "
        "$QUEUECTL_QUEUE $QUEUECTL_QUEUE_ACTIVE $QUEUECTL_QUEUE_COMPLETED "
        f"x$QUEUECTL_LOG >> {facts}"
    )
    daemon.cli("queue", "set", "hooked", "--on-finish", record)
    daemon.cli("config", "set", "on-finish", f"echo global $QUEUECTL_JOB_ID >> {facts}; exit 3")
    daemon.cli("worker", "start", "--count", "1")
    daemon.cli("enqueue", "--id", "ok", "--queue", "hooked", "--command", "echo hi")
    daemon.cli(
        "enqueue", "--id", "bad", "--queue", "hooked", "--max-retries", "0", "--command", "exit 4"
    )
    daemon.cli("enqueue", "--id", "plain", "--command", "true")
    daemon.cli("wait", "ok", "bad", "plain", "--timeout", "10")
    lines = wait_for(
        lambda: (
            (t := facts.read_text().splitlines() if facts.exists() else []) and len(t) == 3 and t
        ),
        10,
        what="three hooks to run",
    )
    by_job = {
        line.split()[0] if line.split()[0] != "global" else line.split()[1]: line.split()
        for line in lines
    }
    ok = by_job["ok"]
    assert ok[1:5] == ["completed", "x0", "1", "hooked"]
    assert ok[7].endswith(".log")  # it printed, so its run has a log file
    # 'bad' ended last in its queue: nothing active is left, one job completed.
    assert by_job["bad"][1:7] == ["dead", "x4", "1", "hooked", "0", "1"]
    assert by_job["plain"] == ["global", "plain"]  # no queue hook: the global one
    # The global hook exits 3: logged, and the job is completed all the same.
    assert daemon.client().get_job("plain")["state"] == "completed"
    wait_for(lambda: "on_finish hook for job plain exited with 3" in daemon.log_text(), 5)
    # Removing the queue's hook falls back to the global one.
    daemon.cli("queue", "set", "hooked", "--on-finish", "")
    daemon.cli("enqueue", "--id", "after", "--queue", "hooked", "--command", "true")
    daemon.cli("wait", "after")
    wait_for(lambda: "global after" in facts.read_text(), 10, what="the global hook")


def test_queue_list_and_bad_input(daemon):
    empty = daemon.cli("queue", "list")
    assert empty.returncode == 0 and empty.stdout.strip() == "no queues"
    daemon.cli("enqueue", "--queue", "mail", "--delay", "60", "--command", "true")
    listing = daemon.cli("queue", "list")
    assert listing.stdout.split("\n")[1].split()[:4] == ["mail", "1", "0", "0/-"]
    nothing = daemon.cli("queue", "set", "mail")
    assert nothing.returncode == 2 and "give at least one of" in nothing.stderr
    negative = daemon.cli("queue", "set", "mail", "--concurrency", "-1")
    assert negative.returncode == 2
    bad = daemon.cli("enqueue", "--command", "true", "--on-duplicate", "maybe")
    assert bad.returncode == 2


def test_queue_names_are_capped_everywhere_they_are_given(daemon):
    from protocol.errors import ProtocolError

    client = daemon.client()
    long_name = "q" * 300
    client.enqueue({"id": "named", "command": "true"})
    for op, args in (
        ("queue_set", {"name": long_name, "concurrency": 1}),
        ("queue_pause", {"name": long_name}),
        ("edit", {"id": "named", "queue": long_name}),
    ):
        try:
            client.call(op, **args)
        except ProtocolError as exc:
            assert "longer than 256 bytes" in exc.message, op
        else:
            raise AssertionError(f"{op} accepted a 300-byte queue name")
    assert client.get_job("named")["queue"] == "default"


def test_a_schedules_jobs_never_see_the_connection_token(daemon, workdir):
    out = workdir / "env"
    client = daemon.client()
    client.call(
        "schedule_add",
        name="tok",
        cron="* * * * *",
        job={"command": f"env > {out}", "env": {"QUEUECTL_TOKEN": "secret", "OK": "1"}},
        environ={"PATH": "/usr/bin:/bin", "QUEUECTL_TOKEN": "secret2"},
        cwd=str(workdir),
    )
    [schedule] = client.call("schedule_list")["schedules"]
    assert "QUEUECTL_TOKEN" not in schedule["job"].get("env", {})
    assert schedule["job"]["env"]["OK"] == "1"


# -- jobs claimed ahead ---------------------------------------------------------------
# With short jobs the dispatcher claims one job ahead for each busy worker. These
# held jobs must never be seen to start after something said they may not.


def _short_backlog(daemon, queue: str, count: int, command: str, progress: int) -> list[str]:
    with daemon.client() as client:
        ids = [
            job_id
            for batch in client.enqueue_many(
                {"command": command, "queue": queue} for _ in range(count)
            )
            for job_id in batch
        ]
        client.scale_workers(2)
        wait_for(
            lambda: client.status()["jobs"]["completed"] >= progress,
            30,
            0.005,
            "the drain to get going",
        )
    return ids


def _latest_start(client, queue: str) -> float:
    starts = [job["started_at"] for job in client.list_jobs(queue=queue) if job["started_at"]]
    return max(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() for s in starts)


def test_a_queue_paused_mid_drain_starts_nothing_more_not_even_held_jobs(daemon):
    # Runs of 20 ms: short enough to be claimed ahead, long enough that a held job
    # would wait for a worker past the moment the pause is acknowledged.
    ids = _short_backlog(daemon, "burst", 300, "sleep 0.02", 20)
    with daemon.client() as client:
        client.queue_pause("burst")
        paused_at = time.time()
        time.sleep(0.5)
        status = client.status()
        assert status["jobs"]["processing"] == 0, status["jobs"]
        assert _latest_start(client, "burst") <= paused_at
        done = status["jobs"]["completed"]
        assert 20 <= done < len(ids)
        assert status["jobs"]["pending"] == len(ids) - done  # every held job went back
        client.queue_resume("burst")
        assert client.wait(ids, timeout=60)["done"]


def test_a_drain_or_a_canceled_held_job_leaves_nothing_claimed(daemon):
    ids = _short_backlog(daemon, "default", 3000, "true", 100)
    with daemon.client() as client:
        # Cancel the jobs at the front of the backlog: held, running or already done.
        done = client.status()["jobs"]["completed"]
        canceled = []
        for job_id in ids[done : done + 10]:
            try:
                state = client.cancel(job_id)["state"]
            except ProtocolError as exc:
                assert "completed" in str(exc), exc
                continue
            # A running `true` may end before the kill reaches it.
            assert state in ("canceled", "completed"), state
            if state == "canceled":
                canceled.append(job_id)
        client.drain(wait=True, timeout=10)
        drained_at = time.time()
        time.sleep(0.3)
        status = client.status()["jobs"]
        assert status["processing"] == 0, status
        assert _latest_start(client, "default") <= drained_at
        for job_id in canceled:
            job = client.get_job(job_id)
            assert job["state"] == "canceled", job
            # Canceled before it ran (held, or waiting), or killed while running.
            assert [run["outcome"] for run in job["history"]] in ([], ["canceled"]), job
        client.resume_workers()
        result = client.wait(ids, timeout=60)
        assert result["done"]
        states = list(result["states"].values())
        assert states.count("completed") == len(ids) - len(canceled)


def test_a_daemon_stopped_mid_drain_leaves_held_jobs_as_if_never_claimed(daemon):
    ids = _short_backlog(daemon, "default", 3000, "true", 100)
    assert daemon.stop() == 0  # graceful: running jobs finish, held ones go back
    daemon.workers = 0
    daemon.start()
    with daemon.client() as client:
        jobs = client.list_jobs()
        assert len(jobs) == len(ids)
        states = {job["state"] for job in jobs}
        assert states == {"completed", "pending"}, states
        # A job left claimed would have been recovered as an interrupted run
        # at this start, with a start time; a released one never started.
        for job in jobs:
            if job["state"] == "pending":
                assert job["started_at"] is None and job["attempts"] == 0, job
