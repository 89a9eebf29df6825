"""SQLite schema, as numbered migrations.

`PRAGMA user_version` holds how many migrations a file has had; the daemon
applies the missing ones at start, each in its own transaction, and refuses a
file newer than it knows or one that is not a queuectl database at all.
"""

from __future__ import annotations

APPLICATION_ID = 0x51435444  # "QCTD"

_STATES = ("pending", "processing", "completed", "failed", "dead", "canceled")

MIGRATIONS: list[str] = [
    # 1: the initial schema
    """
    CREATE TABLE environments (
        id INTEGER PRIMARY KEY,
        digest BLOB NOT NULL UNIQUE,
        cwd TEXT NOT NULL,
        environ BLOB NOT NULL
    );
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        command TEXT NOT NULL,
        state TEXT NOT NULL,
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_retries INTEGER NOT NULL,
        timeout REAL NOT NULL,
        runs INTEGER NOT NULL DEFAULT 0,
        env_id INTEGER NOT NULL REFERENCES environments (id),
        env BLOB,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        run_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        exit_code INTEGER,
        last_error TEXT
    );
    -- Dispatch walks this in order and stops at the first due rows.
    CREATE INDEX jobs_due ON jobs (priority DESC, run_at, seq)
        WHERE state IN ('pending', 'failed');
    -- The dispatcher's timer is set from the smallest run_at of waiting jobs.
    CREATE INDEX jobs_next_due ON jobs (run_at) WHERE state IN ('pending', 'failed');
    CREATE INDEX jobs_by_state ON jobs (state, seq);
    CREATE INDEX jobs_by_queue ON jobs (queue, state, seq);
    CREATE TABLE runs (
        job_seq INTEGER NOT NULL,
        run INTEGER NOT NULL,
        worker INTEGER,
        pid INTEGER,
        pid_started REAL,
        started_at REAL NOT NULL,
        finished_at REAL,
        outcome TEXT NOT NULL,
        exit_code INTEGER,
        signal INTEGER,
        error TEXT,
        counted INTEGER NOT NULL DEFAULT 1,
        log_path TEXT,
        PRIMARY KEY (job_seq, run)
    ) WITHOUT ROWID;
    CREATE INDEX runs_running ON runs (job_seq) WHERE outcome = 'running';
    -- Counts kept by triggers so `status` never scans the jobs table.
    CREATE TABLE job_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    """
    + "".join(f"INSERT INTO job_counts VALUES ('{s}', 0);\n" for s in _STATES)
    + """
    CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
        UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
    END;
    CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs
        WHEN OLD.state <> NEW.state BEGIN
        UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
        UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
    END;
    CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
        UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
    END;
    CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    """,
    # 2: when each attempt became due (its wait is started_at - due_at), and an index
    # so that `stats` reads only the runs that ended in its window. It covers the
    # columns stats reads, which halves its time (no lookup of each run by its key).
    """
    ALTER TABLE runs ADD COLUMN due_at REAL;
    CREATE INDEX runs_finished ON runs (finished_at, outcome, counted, started_at, due_at)
        WHERE finished_at IS NOT NULL;
    """,
]

# 3: control over what runs when: named queues with limits and pauses, dependencies,
# unique keys, recurring schedules. Appended, never merged into migration 1, so
# existing databases upgrade in place.
MIGRATIONS.append(
    """
    -- How many of a job's dependencies have not completed yet; only 0 is claimable.
    ALTER TABLE jobs ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
    -- The job's dependencies as given at enqueue (a JSON array of ids), for display.
    ALTER TABLE jobs ADD COLUMN after TEXT;
    ALTER TABLE jobs ADD COLUMN unique_key TEXT;
    -- At most one live job per key. The store inserts with ON CONFLICT DO NOTHING
    -- against this index, so uniqueness never depends on a check-then-insert.
    CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('pending', 'failed', 'processing');
    -- Claiming works queue by queue (limits and pauses are per queue), walking each
    -- queue's claimable jobs by priority, then due time. Superseded the global indexes.
    DROP INDEX IF EXISTS jobs_due;
    DROP INDEX IF EXISTS jobs_next_due;
    CREATE INDEX jobs_due_in_queue ON jobs (queue, priority DESC, run_at, seq)
        WHERE state IN ('pending', 'failed') AND blocked = 0;
    CREATE INDEX jobs_next_due_in_queue ON jobs (queue, run_at)
        WHERE state IN ('pending', 'failed') AND blocked = 0;
    -- dep_seq must complete before job_seq may run.
    CREATE TABLE job_deps (
        dep_seq INTEGER NOT NULL,
        job_seq INTEGER NOT NULL,
        PRIMARY KEY (dep_seq, job_seq)
    ) WITHOUT ROWID;
    CREATE INDEX job_deps_of_job ON job_deps (job_seq);
    -- Settings of named queues; a queue without a row has the defaults.
    CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        concurrency INTEGER NOT NULL DEFAULT 0,
        priority INTEGER NOT NULL DEFAULT 0,
        paused INTEGER NOT NULL DEFAULT 0,
        on_finish TEXT
    ) WITHOUT ROWID;
    -- Per-queue counts kept by triggers: claiming reads the running count of a queue
    -- and `queue list` its counts by state without scanning the jobs table.
    CREATE TABLE queue_counts (
        queue TEXT NOT NULL,
        state TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (queue, state)
    ) WITHOUT ROWID;
    INSERT INTO queue_counts (queue, state, n)
        SELECT queue, state, count(*) FROM jobs GROUP BY queue, state;
    CREATE TRIGGER jobs_queue_count_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
            ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER jobs_queue_count_update AFTER UPDATE OF state, queue ON jobs
        WHEN OLD.state <> NEW.state OR OLD.queue <> NEW.queue BEGIN
        UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
        INSERT INTO queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
            ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER jobs_queue_count_delete AFTER DELETE ON jobs BEGIN
        UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
    END;
    -- Recurring jobs. fired_through: every fire time up to it has been handled
    -- (enqueued or skipped by the catch-up policy); next_fire: the first one after it.
    CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT NOT NULL,
        tz TEXT NOT NULL,
        catch_up TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        job BLOB NOT NULL,
        env_id INTEGER NOT NULL REFERENCES environments (id),
        created_at REAL NOT NULL,
        fired_through REAL NOT NULL,
        next_fire REAL NOT NULL,
        last_job TEXT
    ) WITHOUT ROWID;
    """
)

# 4: crash safety, retention and job identity.
MIGRATIONS.append(
    """
    -- One random id per store: part of the marker a run's processes carry, so a
    -- restarted daemon finds its own orphans and never another home's.
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    INSERT INTO meta VALUES ('instance', lower(hex(randomblob(8))));
    -- The local user a job runs as, when the daemon runs as root (NULL: the daemon's own).
    ALTER TABLE jobs ADD COLUMN run_uid INTEGER;
    ALTER TABLE jobs ADD COLUMN run_gid INTEGER;
    -- Retention walks finished jobs oldest first; the DLQ (dead) is not pruned.
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('completed', 'canceled');
    ALTER TABLE schedules ADD COLUMN run_uid INTEGER;
    ALTER TABLE schedules ADD COLUMN run_gid INTEGER;
    -- Pruning drops environments no job refers to.
    CREATE INDEX jobs_env ON jobs (env_id);
    """
)

# 5: new jobs are counted once per batch by the store (insert_jobs), not by a trigger
# per row: the two insert triggers cost more than inserting the row itself. State
# changes and deletes stay counted by their triggers: those come one row at a time.
MIGRATIONS.append(
    """
    DROP TRIGGER jobs_count_insert;
    DROP TRIGGER jobs_queue_count_insert;
    """
)

# 6: several daemons may share one store. Each registers with a heartbeat; each run
# records the daemon that claimed it, and every transition of a run is fenced by it.
# Runs claimed before this migration keep owner NULL: only one daemon could have
# claimed them, so the first daemon to start recovers them. `late_result` keeps a
# result that arrived after the run had been taken from its daemon.
MIGRATIONS.append(
    """
    CREATE TABLE daemons (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN late_result TEXT;
    """
)

# 7: each daemon's fleet figures, written with its heartbeat, so that `status` on any
# daemon of a shared store shows every daemon's workers.
MIGRATIONS.append(
    """
    ALTER TABLE daemons ADD COLUMN busy INTEGER;
    ALTER TABLE daemons ADD COLUMN idle INTEGER;
    ALTER TABLE daemons ADD COLUMN target INTEGER;
    """
)

# 8: a cancel of a running job asked through another daemon than the one that runs
# it: the run is marked, and its daemon kills it.
MIGRATIONS.append(
    """
    ALTER TABLE runs ADD COLUMN cancel_requested_at REAL;
    """
)
