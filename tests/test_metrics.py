"""The Prometheus endpoint and the stats op, checked against a workload whose numbers are known."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from queuectld.store.sqlite.store import SQLiteStore
from queuectld.store.sqlite.views import STATS_SQL
from queuectld.store.views import percentile_summary
from queuectld.telemetry.metrics import parse_address
from tests.conftest import ROOT, wait_for

prometheus_parser = pytest.importorskip("prometheus_client.parser")


def run_known_workload(daemon) -> None:
    """alpha: 3 jobs of 0.3 s and one delayed by 1 s, all completed.
    beta: one job that always fails, 2 attempts (1 s apart), then dead."""
    client = daemon.client()
    client.config_set("backoff-base", 1)
    # Workers take a moment to start; waiting for them is not what is measured here.
    wait_for(lambda: client.status()["workers"]["idle"] == 2, what="2 idle workers")
    client.enqueue(*[{"id": f"a{i}", "command": "sleep 0.3", "queue": "alpha"} for i in range(3)])
    client.enqueue({"id": "a-late", "command": "true", "queue": "alpha", "delay": 1})
    client.enqueue({"id": "b", "command": "exit 4", "queue": "beta", "max_retries": 1})
    ids = ["a0", "a1", "a2", "a-late", "b"]
    states = client.wait(ids, timeout=30)["states"]
    assert states == {"a0": "completed", "a1": "completed", "a2": "completed",
                      "a-late": "completed", "b": "dead"}  # fmt: skip


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {}
    for family in prometheus_parser.text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_after_a_known_workload(daemon_factory):
    daemon = daemon_factory(workers=2, extra=("--metrics", "127.0.0.1:0"))
    host_port = daemon.client().status()["daemon"]["metrics"]
    assert host_port.startswith("127.0.0.1:")
    port = int(host_port.rsplit(":", 1)[1])
    run_known_workload(daemon)
    m = scrape(port)

    def value(name: str, **labels) -> float:
        return m[(name, tuple(sorted(labels.items())))]

    assert value("queuectl_jobs_enqueued_total", queue="alpha") == 4
    assert value("queuectl_jobs_enqueued_total", queue="beta") == 1
    assert value("queuectl_jobs_started_total", queue="alpha") == 4
    assert value("queuectl_jobs_started_total", queue="beta") == 2  # a retry starts again
    assert value("queuectl_jobs_completed_total", queue="alpha") == 4
    assert ("queuectl_jobs_completed_total", (("queue", "beta"),)) not in m
    assert value("queuectl_job_attempts_failed_total", queue="beta") == 2
    assert value("queuectl_jobs_dead_total", queue="beta") == 1
    assert value("queuectl_job_run_seconds_count", queue="alpha") == 4
    assert 0.9 <= value("queuectl_job_run_seconds_sum", queue="alpha") < 3
    # 3 jobs in the 0.3 s bucket or above; the `true` job below it.
    assert value("queuectl_job_run_seconds_bucket", queue="alpha", le="0.25") == 1
    assert value("queuectl_job_run_seconds_bucket", queue="alpha", le="+Inf") == 4
    assert value("queuectl_job_wait_seconds_count", queue="alpha") == 4
    assert value("queuectl_job_wait_seconds_count", queue="beta") == 2
    # Wait is from due to start: two jobs wait ~0.3 s for a free worker; the 1 s delay
    # of a-late and the 1 s backoff of b are the schedule, not waiting (either alone
    # would push its queue's sum past 1 s).
    assert value("queuectl_job_wait_seconds_sum", queue="alpha") < 1.0
    assert value("queuectl_job_wait_seconds_sum", queue="beta") < 1.0
    # Gauges, read at scrape time.
    assert value("queuectl_jobs", state="completed") == 4
    assert value("queuectl_jobs", state="dead") == 1
    assert value("queuectl_jobs", state="pending") == 0
    assert value("queuectl_workers", state="busy") == 0
    assert value("queuectl_workers", state="idle") == 2
    assert value("queuectl_workers_target") == 2
    assert value("process_resident_memory_bytes") > 0


def test_stats_after_a_known_workload(daemon_factory):
    daemon = daemon_factory(workers=2)
    run_known_workload(daemon)
    stats = daemon.client().stats()
    alpha, beta = stats["queues"]["alpha"], stats["queues"]["beta"]
    assert alpha["completed"] == {"minute": 4, "hour": 4}
    assert alpha["failed_attempts"] == {"minute": 0, "hour": 0}
    assert alpha["success_rate"] == {"minute": 1.0, "hour": 1.0}
    assert alpha["throughput_per_minute"]["minute"] == 4
    assert alpha["run_seconds"]["count"] == 4
    assert 0.3 <= alpha["run_seconds"]["p50"] < 1.0  # nearest rank: the 2nd of 4 runs
    assert alpha["run_seconds"]["max"] >= alpha["run_seconds"]["p90"] >= alpha["run_seconds"]["p50"]
    assert alpha["wait_seconds"]["max"] < 1.0
    assert beta["completed"]["hour"] == 0
    assert beta["failed_attempts"] == {"minute": 2, "hour": 2}
    assert beta["dead"] == {"minute": 1, "hour": 1}
    assert beta["success_rate"]["hour"] == 0.0
    assert stats["total"]["completed"]["hour"] == 4
    assert stats["total"]["success_rate"]["hour"] == round(4 / 6, 4)
    only_beta = daemon.client().stats(queue="beta")
    assert list(only_beta["queues"]) == ["beta"]


def test_metrics_flag_without_prometheus_client_is_a_clear_error(home):
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from queuectld.main import main\n"
        f"main(['--home', {str(home)!r}, '--metrics', '127.0.0.1:0'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "queuectld: --metrics needs the prometheus-client package: "
        "pip install 'queuectl[metrics]'\n"
    )
    assert not (home / "queuectld.sock").exists()


def test_metrics_port_in_use_is_a_clear_error(daemon_factory, home):
    first = daemon_factory(workers=0, extra=("--metrics", "127.0.0.1:0"))
    taken = first.client().status()["daemon"]["metrics"]
    other = home / "other"
    result = subprocess.run(
        [sys.executable, "-m", "queuectld", "--home", str(other), "--metrics", taken],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr == f"queuectld: cannot serve metrics on {taken}: Address already in use\n"


def test_parse_metrics_address():
    assert parse_address("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_address(":9464") == ("0.0.0.0", 9464)
    assert parse_address("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "host:", "::1:9464", "h:70000"):
        with pytest.raises(ValueError):
            parse_address(bad)


# -- the stats queries --------------------------------------------------------


def test_stats_queries_read_the_window_through_the_index_not_the_whole_table(tmp_path):
    store = SQLiteStore(tmp_path / "q.db")
    conn = store.conn
    now = time.time()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO environments (id, digest, cwd, environ) VALUES (1, x'00', '/', x'80')", [()]
    )
    conn.executemany(
        "INSERT INTO jobs (seq, id, command, state, queue, priority, max_retries, timeout, runs, "
        "env_id, created_at, updated_at, run_at) "
        "VALUES (?, ?, 'true', 'completed', ?, 0, 0, 0, 1, 1, ?, ?, ?)",
        [
            (seq, f"j{seq}", "old" if seq <= 5000 else "new", now, now, now)
            for seq in range(1, 5101)
        ],
    )
    # 5000 runs two hours old, 100 in the last minute (1 s each, due 0.5 s before start).
    conn.executemany(
        "INSERT INTO runs (job_seq, run, started_at, finished_at, due_at, outcome, counted) "
        "VALUES (?, 1, ?, ?, ?, 'completed', 1)",
        [
            (seq, t - 1, t, t - 1.5)
            for seq in range(1, 5101)
            for t in [now - 7200 if seq <= 5000 else now - 10]
        ],
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    statements = (
        (STATS_SQL.counts, (now - 60, now - 3600)),
        (STATS_SQL.sample, (now - 3600, 10_000)),
        (STATS_SQL.per_minute, (now - 3600, now - 3600)),
    )
    for query, params in statements:
        plan = " / ".join(
            row[-1]
            for row in conn.execute("EXPLAIN QUERY PLAN " + query.format(queue_filter=""), params)
        )
        assert "USING COVERING INDEX runs_finished" in plan, plan
        assert "SCAN r" not in plan, plan
    stats = store.run_stats(now)
    assert list(stats["queues"]) == ["new"]
    assert stats["total"]["completed"] == {"minute": 100, "hour": 100}
    assert stats["total"]["run_seconds"]["p50"] == pytest.approx(1.0)
    assert stats["total"]["wait_seconds"]["p99"] == pytest.approx(0.5)
    store.close()


def test_percentiles_by_nearest_rank():
    summary = percentile_summary([float(v) for v in range(1, 101)])
    assert (summary["p50"], summary["p90"], summary["p99"], summary["max"]) == (50, 90, 99, 100)
    assert percentile_summary([])["p50"] is None
    assert percentile_summary([2.0])["p99"] == 2.0
