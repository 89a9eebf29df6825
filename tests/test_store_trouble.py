"""The store in trouble: locked by another process, a full disk, a read-only data
home, a file system that turns read-only under the open database, a damaged or
foreign database file. The daemon answers with a clear error, loses nothing it
acknowledged, and recovers when the condition clears."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from protocol.errors import ErrorCode, ProtocolError
from tests.conftest import wait_for


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture
def mount_point(home):
    """A directory for a test file system; whatever a test mounts there is unmounted."""
    path = home / "mnt"
    path.mkdir()
    yield path
    for _ in range(3):  # a bind mount may sit on top of the first mount
        if run("mountpoint", "-q", str(path)).returncode != 0:
            break
        if run("umount", str(path)).returncode != 0:
            run("umount", "-l", str(path))


def mount_tmpfs(path: Path, size: str) -> None:
    result = run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); needs root")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def enqueue_ids(client, prefix: str, count: int, command: str = "true") -> list[str]:
    return client.enqueue(*({"id": f"{prefix}{i}", "command": command} for i in range(count)))


def stored_ids(daemon) -> set[str]:
    with daemon.client() as client:
        return {job["id"] for job in client.list_jobs()}


# -- locked ------------------------------------------------------------------------


def test_database_locked_by_another_process(daemon_factory, workdir):
    daemon = daemon_factory(workers=1)
    go, done = workdir / "go", workdir / "done"
    with daemon.client() as client:
        acked = enqueue_ids(client, "before", 20, command=f"echo $QUEUECTL_JOB_ID >> {done}")
        client.enqueue(
            {
                "id": "running",
                "command": f"while [ ! -f {go} ]; do sleep 0.05; done; echo running >> {done}",
            }
        )
        wait_for(lambda: client.get_job("running")["state"] == "processing", what="running")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "c.execute('COMMIT')\n",
            str(daemon.home / "queuectl.db"),
            "9",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        go.touch()  # the job ends while the store is locked: its result must not be lost
        started = time.monotonic()
        with daemon.client() as client, pytest.raises(ProtocolError) as refused:
            client.enqueue({"id": "during", "command": "true"})
        assert refused.value.code == ErrorCode.UNAVAILABLE
        assert "database is locked" in refused.value.message
        assert time.monotonic() - started < 8  # bounded by the store's busy timeout
        holder.wait(30)
    finally:
        holder.kill()
        holder.wait()
    with daemon.client() as client:
        assert client.wait(["running", *acked], timeout=30)["done"]
        assert client.get_job("running")["state"] == "completed"
        client.enqueue({"id": "after", "command": "true"})
    assert set(acked) | {"running", "after"} <= stored_ids(daemon)
    counts = Counter(done.read_text().split())
    assert counts["running"] == 1 and all(counts[i] == 1 for i in acked)


# -- full disk ---------------------------------------------------------------------


def test_full_disk_refuses_new_work_keeps_old_and_recovers(daemon_factory, mount_point):
    mount_tmpfs(mount_point, "6m")
    daemon = daemon_factory(workers=1, data_home=mount_point)
    go = mount_point / "go"
    with daemon.client() as client:
        acked = enqueue_ids(client, "early", 50)
        assert client.wait(acked, timeout=30)["done"]
        client.enqueue(
            {
                "id": "talker",
                "command": f"while [ ! -f {go} ]; do sleep 0.05; done; seq 1 20000",
            }
        )
        wait_for(lambda: client.get_job("talker")["state"] == "processing", what="talker")
    filler = mount_point / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    refusal = None
    command = "echo " + "x" * 2000
    with daemon.client() as client:
        for batch in range(200):
            try:
                acked += enqueue_ids(client, f"fill{batch}-", 20, command=command)
            except ProtocolError as exc:
                refusal = exc
                break
        assert refusal is not None, "the disk never filled up"
        assert refusal.code == ErrorCode.UNAVAILABLE
        assert "full" in refusal.message
        go.touch()  # the running job now writes output that cannot be stored
        assert client.status()["daemon"]["pid"] == daemon.pid  # reads still work
        time.sleep(1)
    filler.unlink()
    with daemon.client() as client:
        assert client.wait(["talker"], timeout=30)["done"]
        talker = client.get_job("talker")
        assert talker["state"] == "completed"
        assert "output not captured" in talker["last_error"]
        acked += enqueue_ids(client, "late", 5)
    daemon.restart()
    assert set(acked) <= stored_ids(daemon)


# -- read-only -----------------------------------------------------------------------


def test_read_only_data_home_at_start_is_a_clear_error_and_nothing_is_touched(
    daemon_factory, mount_point
):
    mount_tmpfs(mount_point, "32m")
    daemon = daemon_factory(workers=0, data_home=mount_point)
    with daemon.client() as client:
        acked = enqueue_ids(client, "kept", 30)
    daemon.stop()
    db = mount_point / "queuectl.db"
    before = sha(db)
    assert run("mount", "-o", "remount,ro", str(mount_point)).returncode == 0
    # Run directly: the test helper would put its own log in the (read-only) home.
    result = subprocess.run(
        [sys.executable, "-m", "queuectld", "--home", str(mount_point), "--workers", "0"],
        env=daemon.env(),
        capture_output=True,
        text=True,
        timeout=15,
        cwd="/",
    )
    assert result.returncode == 1
    assert result.stderr == f"queuectld: data home {mount_point} is on a read-only file system\n"
    assert sha(db) == before
    assert run("mount", "-o", "remount,rw", str(mount_point)).returncode == 0
    daemon.start()
    assert set(acked) <= stored_ids(daemon)


def test_data_home_turning_read_only_while_running(daemon_factory, mount_point):
    """New files cannot be made (logs); the open database keeps working."""
    mount_tmpfs(mount_point, "32m")
    daemon = daemon_factory(workers=1, data_home=mount_point)
    assert run("mount", "--bind", str(mount_point), str(mount_point)).returncode == 0
    assert run("mount", "-o", "remount,bind,ro", str(mount_point)).returncode == 0
    with daemon.client() as client:
        acked = client.enqueue({"id": "quiet", "command": "echo lost output"})
        assert client.wait(acked, timeout=30)["done"]
        job = client.get_job("quiet")
        assert job["state"] == "completed"
        assert "output not captured: Read-only file system" in job["last_error"]
    assert run("umount", str(mount_point)).returncode == 0  # writable again
    with daemon.client() as client:
        acked += client.enqueue({"id": "loud", "command": "echo kept output"})
        assert client.wait(["loud"], timeout=30)["done"]
        assert client.logs("loud")["data"] == b"kept output\n"
    daemon.restart()
    assert set(acked) <= stored_ids(daemon)


def test_file_system_forced_read_only_under_the_open_database(daemon_factory, mount_point, home):
    """The kernel turns the file system read-only (as after an I/O error): writes to
    the open database fail. Clients hear `unavailable`; after repair and a restart
    every acknowledged job is there."""
    image = home / "fs.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    if run("mkfs.ext4", "-q", str(image)).returncode != 0:
        pytest.skip("mkfs.ext4 is not available")
    mounted = run("mount", "-o", "loop,errors=remount-ro", str(image), str(mount_point))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop device here ({mounted.stderr.strip()})")
    device = Path(run("findmnt", "-n", "-o", "SOURCE", str(mount_point)).stdout.strip()).name
    trigger = Path(f"/sys/fs/ext4/{device}/trigger_fs_error")
    if not trigger.exists():
        pytest.skip("this kernel cannot inject an ext4 error (no trigger_fs_error)")
    os.chmod(mount_point, 0o700)
    daemon = daemon_factory(workers=0, data_home=mount_point)
    with daemon.client() as client:
        acked = enqueue_ids(client, "safe", 100)
    trigger.write_text("test: forced read-only\n")
    with daemon.client() as client:
        with pytest.raises(ProtocolError) as refused:
            client.enqueue({"id": "nope", "command": "true"})
        assert refused.value.code == ErrorCode.UNAVAILABLE
        assert refused.value.message.startswith("database unavailable:")
        assert "\n" not in refused.value.message
        assert client.hello()["pid"] == daemon.pid  # still answering
    assert daemon.stop() == 0
    assert run("umount", str(mount_point)).returncode == 0
    run("e2fsck", "-fy", str(image))
    assert run("mount", "-o", "loop", str(image), str(mount_point)).returncode == 0
    daemon.start()
    assert set(acked) <= stored_ids(daemon)


# -- damaged or foreign files ------------------------------------------------------------


def start_error(daemon) -> str:
    daemon.start(wait=False)
    assert daemon.proc.wait(15) == 1
    daemon.proc = None
    lines = daemon.log_text().strip().splitlines()
    return lines[-1]


@pytest.fixture
def stopped_daemon_with_jobs(daemon_factory):
    daemon = daemon_factory(workers=0)
    with daemon.client() as client:
        for batch in range(4):
            enqueue_ids(client, f"b{batch}-", 500, command="echo " + "p" * 100)
    daemon.stop()
    return daemon


def test_damaged_database_is_refused_at_start_and_left_alone(stopped_daemon_with_jobs):
    daemon = stopped_daemon_with_jobs
    db = daemon.home / "queuectl.db"
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    data[10 * page : 12 * page] = b"\xa5" * (2 * page)  # two pages of a table or index
    db.write_bytes(bytes(data))
    before = sha(db)
    line = start_error(daemon)
    assert line.startswith(f"queuectld: cannot open the job store: {db} is damaged")
    assert "restore it from a backup or move it aside" in line
    assert sha(db) == before


@pytest.mark.parametrize(
    "damage, words",
    [
        ("garbage", "is not a readable SQLite database"),
        ("foreign", "is a SQLite database, but not queuectl's"),
        ("newer", "newer than this queuectld understands"),
    ],
)
def test_foreign_garbage_and_newer_files_are_refused_with_one_line(
    daemon_factory, home, damage, words
):
    db = home / "queuectl.db"
    if damage == "garbage":
        db.write_bytes(b"not a database at all\n" * 500)
    else:
        daemon = daemon_factory(workers=0)
        daemon.stop()
        conn = sqlite3.connect(db)
        if damage == "foreign":
            conn.execute("PRAGMA application_id = 1234")
        else:
            conn.execute("PRAGMA user_version = 99")
        conn.commit()
        conn.close()
    before = sha(db)
    line = start_error(daemon_factory(workers=0, start=False))
    assert line.startswith("queuectld: cannot open the job store:") and words in line
    assert sha(db) == before


def test_stopping_while_the_store_stays_locked_does_not_hang_or_lose_the_job(
    daemon_factory, workdir
):
    """A finished job's result cannot be stored before the daemon is told to stop:
    the stop gives up after a bounded wait, and the next start requeues the job."""
    daemon = daemon_factory(workers=1)
    go, done = workdir / "go", workdir / "done"
    with daemon.client() as client:
        client.enqueue(
            {
                "id": "limbo",
                "command": f"while [ ! -f {go} ]; do sleep 0.05; done; echo x >> {done}",
            }
        )
        wait_for(lambda: client.get_job("limbo")["state"] == "processing", what="limbo running")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
            str(daemon.home / "queuectl.db"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        go.touch()
        time.sleep(1)
        started = time.monotonic()
        assert daemon.stop(timeout=90) == 0
        assert time.monotonic() - started < 60
        assert "could not be stored; those jobs are requeued at next start" in daemon.log_text()
    finally:
        holder.stdin.close()
        holder.wait(10)
    go.unlink()
    daemon.start()
    with daemon.client() as client:
        assert client.get_job("limbo")["history"][0]["outcome"] == "interrupted"
        go.touch()
        assert client.wait(["limbo"], timeout=30)["done"]
        assert client.get_job("limbo")["state"] == "completed"
    # Its first run finished but could not be recorded, so it ran again: delivery is
    # at least once (docs/GUARANTEES.md), and the job is not lost.
    assert done.read_text().split() == ["x", "x"]
