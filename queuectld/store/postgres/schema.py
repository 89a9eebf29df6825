"""PostgreSQL schema, as numbered, append-only migrations.

The `meta` table holds how many migrations a database has had. A daemon applies
the missing ones at open, each in its own transaction, holding a session advisory
lock so that daemons starting together on one database migrate it once; it
refuses a database newer than it knows, or one that holds tables but is not
queuectl's. Times are seconds since the epoch (DOUBLE PRECISION, like SQLite's
REAL); msgpack blobs are BYTEA; JSON columns are TEXT as in the SQLite schema.
Identifiers and keys compare bytewise (COLLATE "C"), as they do in SQLite.
"""

from __future__ import annotations

from queuectld.store.base import ForeignDatabase
from queuectld.store.postgres.connection import Database

APPLICATION = "queuectl"
# pg_advisory_lock(int, int) keys: the first names queuectl ("QCTD"), the second
# what is locked.
LOCK_SPACE = 0x51435444
MIGRATION_LOCK = 1
SCHEDULES_LOCK = 2  # held by the daemon firing schedules, to its commit
HOUSEKEEPING_LOCK = 3  # held by the daemon that prunes, for as long as it is connected

MIGRATIONS: list[str] = [
    # 1: the schema of SQLite migration 6, in PostgreSQL's terms.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    -- One random id per store: part of the marker a run's processes carry.
    INSERT INTO meta VALUES ('instance', left(md5(gen_random_uuid()::text), 16));
    CREATE TABLE environments (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        digest BYTEA NOT NULL UNIQUE,
        cwd TEXT NOT NULL,
        environ BYTEA NOT NULL
    );
    CREATE TABLE jobs (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT COLLATE "C" NOT NULL UNIQUE,
        command TEXT NOT NULL,
        state TEXT NOT NULL,
        queue TEXT COLLATE "C" NOT NULL,
        priority BIGINT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_retries BIGINT NOT NULL,
        timeout DOUBLE PRECISION NOT NULL,
        runs INTEGER NOT NULL DEFAULT 0,
        env_id BIGINT NOT NULL REFERENCES environments (id),
        env BYTEA,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        run_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        exit_code INTEGER,
        last_error TEXT,
        -- How many of a job's dependencies have not completed yet; only 0 is claimable.
        blocked INTEGER NOT NULL DEFAULT 0,
        -- The job's dependencies as given at enqueue (a JSON array of ids), for display.
        after TEXT,
        unique_key TEXT COLLATE "C",
        run_uid BIGINT,
        run_gid BIGINT
    );
    -- At most one live job per key; inserts use ON CONFLICT DO NOTHING against it.
    CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('pending', 'failed', 'processing');
    -- A claim walks each queue's claimable jobs by priority, then due time.
    CREATE INDEX jobs_due_in_queue ON jobs (queue, priority DESC, run_at, seq)
        WHERE state IN ('pending', 'failed') AND blocked = 0;
    CREATE INDEX jobs_next_due_in_queue ON jobs (queue, run_at)
        WHERE state IN ('pending', 'failed') AND blocked = 0;
    -- The live view's next waiting jobs, soonest first.
    CREATE INDEX jobs_waiting ON jobs (run_at, seq) WHERE state IN ('pending', 'failed');
    CREATE INDEX jobs_by_state ON jobs (state, seq);
    -- Also how many jobs of a queue are running, for its concurrency limit.
    CREATE INDEX jobs_by_queue ON jobs (queue, state, seq);
    -- Retention walks finished jobs oldest first; the DLQ (dead) is not pruned.
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('completed', 'canceled');
    CREATE INDEX jobs_env ON jobs (env_id);
    CREATE TABLE runs (
        job_seq BIGINT NOT NULL,
        run INTEGER NOT NULL,
        worker INTEGER,
        pid INTEGER,
        pid_started DOUBLE PRECISION,
        started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        outcome TEXT NOT NULL,
        exit_code INTEGER,
        signal INTEGER,
        error TEXT,
        counted BOOLEAN NOT NULL DEFAULT true,
        log_path TEXT,
        due_at DOUBLE PRECISION,
        -- The daemon that claimed the run: every transition of the run is fenced by it.
        owner TEXT COLLATE "C",
        -- A result that arrived after the run had been taken from its daemon (JSON).
        late_result TEXT,
        PRIMARY KEY (job_seq, run)
    );
    CREATE INDEX runs_running ON runs (owner) WHERE outcome = 'running';
    -- `stats` reads only the runs that ended in its window, from the index alone.
    CREATE INDEX runs_finished ON runs (finished_at)
        INCLUDE (outcome, counted, started_at, due_at) WHERE finished_at IS NOT NULL;
    -- dep_seq must complete before job_seq may run.
    CREATE TABLE job_deps (
        dep_seq BIGINT NOT NULL,
        job_seq BIGINT NOT NULL,
        PRIMARY KEY (dep_seq, job_seq)
    );
    CREATE INDEX job_deps_of_job ON job_deps (job_seq);
    -- Settings of named queues; a queue without a row has the defaults.
    CREATE TABLE queues (
        name TEXT COLLATE "C" PRIMARY KEY,
        concurrency INTEGER NOT NULL DEFAULT 0,
        priority INTEGER NOT NULL DEFAULT 0,
        paused BOOLEAN NOT NULL DEFAULT false,
        on_finish TEXT
    );
    -- Jobs counted by queue and state as appended deltas: a row per statement that
    -- changes jobs, never an update of a shared counter row, so daemons that change
    -- jobs at the same time never wait for each other here. Readers sum them, and
    -- fold them into one row per (queue, state) now and then (PostgresStore).
    CREATE TABLE job_counts (
        queue TEXT COLLATE "C" NOT NULL,
        state TEXT NOT NULL,
        n BIGINT NOT NULL
    );
    CREATE FUNCTION queuectl_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO job_counts (queue, state, n)
            SELECT queue, state, count(*) FROM new_rows GROUP BY queue, state;
        RETURN NULL;
    END $$;
    CREATE FUNCTION queuectl_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO job_counts (queue, state, n)
            SELECT queue, state, sum(n) FROM (
                SELECT queue, state, -1 AS n FROM old_rows
                UNION ALL SELECT queue, state, 1 FROM new_rows
            ) AS moved GROUP BY queue, state HAVING sum(n) <> 0;
        RETURN NULL;
    END $$;
    CREATE FUNCTION queuectl_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO job_counts (queue, state, n)
            SELECT queue, state, -count(*) FROM old_rows GROUP BY queue, state;
        RETURN NULL;
    END $$;
    CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION queuectl_count_inserted();
    CREATE TRIGGER jobs_count_update AFTER UPDATE ON jobs
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION queuectl_count_updated();
    CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION queuectl_count_deleted();
    -- Recurring jobs. fired_through: every fire time up to it has been handled;
    -- next_fire: the first one after it.
    CREATE TABLE schedules (
        name TEXT COLLATE "C" PRIMARY KEY,
        cron TEXT NOT NULL,
        tz TEXT NOT NULL,
        catch_up TEXT NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT false,
        job BYTEA NOT NULL,
        env_id BIGINT NOT NULL REFERENCES environments (id),
        created_at DOUBLE PRECISION NOT NULL,
        fired_through DOUBLE PRECISION NOT NULL,
        next_fire DOUBLE PRECISION NOT NULL,
        last_job TEXT,
        run_uid BIGINT,
        run_gid BIGINT
    );
    CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    -- Daemons sharing the store, each with its heartbeat.
    CREATE TABLE daemons (
        id TEXT COLLATE "C" PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        heartbeat_at DOUBLE PRECISION NOT NULL
    );
    """,
]

# 2: a claim reads each queue's due jobs one priority level at a time. The claim
# index is ordered by priority first, so one ordered scan with `run_at <= now` walks
# every not-yet-due job of a higher priority (a million delayed jobs, say) before it
# reaches a due one; a range scan per level costs a seek per level instead. After
# 32 levels it finishes with one ordered scan, as the SQLite backend does.
MIGRATIONS.append(
    """
    CREATE FUNCTION queuectl_due_in_queue(q TEXT, due DOUBLE PRECISION, wanted INTEGER)
    RETURNS TABLE (job_seq BIGINT, job_state TEXT, job_priority BIGINT,
                   job_run_at DOUBLE PRECISION)
    LANGUAGE plpgsql AS $$
    DECLARE
        level BIGINT;
        levels INTEGER := 0;
        taken INTEGER := 0;
        got INTEGER;
    BEGIN
        -- ORDER BY ... LIMIT 1 rather than max(): the planner then walks the claim
        -- index even before the table has statistics.
        SELECT j.priority INTO level FROM jobs j
            WHERE j.queue = q AND j.state IN ('pending', 'failed') AND j.blocked = 0
            ORDER BY j.priority DESC LIMIT 1;
        WHILE level IS NOT NULL AND taken < wanted LOOP
            IF levels = 32 THEN
                RETURN QUERY SELECT j.seq, j.state, j.priority, j.run_at FROM jobs j
                    WHERE j.queue = q AND j.state IN ('pending', 'failed') AND j.blocked = 0
                    AND j.priority <= level AND j.run_at <= due
                    ORDER BY j.priority DESC, j.run_at, j.seq LIMIT wanted - taken
                    FOR UPDATE OF j SKIP LOCKED;
                RETURN;
            END IF;
            RETURN QUERY SELECT j.seq, j.state, j.priority, j.run_at FROM jobs j
                WHERE j.queue = q AND j.state IN ('pending', 'failed') AND j.blocked = 0
                AND j.priority = level AND j.run_at <= due
                ORDER BY j.run_at, j.seq LIMIT wanted - taken
                FOR UPDATE OF j SKIP LOCKED;
            GET DIAGNOSTICS got = ROW_COUNT;
            taken := taken + got;
            levels := levels + 1;
            level := (SELECT j.priority FROM jobs j
                WHERE j.queue = q AND j.state IN ('pending', 'failed') AND j.blocked = 0
                AND j.priority < level ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
    END $$;
    """
)

# 3: each daemon's fleet figures, written with its heartbeat, so that `status` on any
# daemon shows every daemon's workers.
MIGRATIONS.append(
    """
    ALTER TABLE daemons ADD COLUMN busy INTEGER, ADD COLUMN idle INTEGER,
        ADD COLUMN target INTEGER;
    """
)

# 4: a cancel of a running job asked through another daemon than the one that runs
# it: the run is marked, and its daemon (told by NOTIFY) kills it.
MIGRATIONS.append(
    """
    ALTER TABLE runs ADD COLUMN cancel_requested_at DOUBLE PRECISION;
    """
)


# 5: runs' captured output, shipped by the daemon that runs them, so that any daemon
# of the store can answer `logs` while a run goes on and after, even once the host
# that ran it is gone. Deleted with the job's runs.
MIGRATIONS.append(
    """
    CREATE TABLE job_output (
        job_seq BIGINT NOT NULL,
        run INTEGER NOT NULL,
        "offset" BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (job_seq, run, "offset")
    );
    """
)


def migrate(db: Database) -> None:
    """Bring the database to the latest schema, or refuse it."""
    db.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_SPACE, MIGRATION_LOCK))
    try:
        for number in range(_version(db), len(MIGRATIONS)):
            db.execute("BEGIN")
            try:
                db.execute(MIGRATIONS[number])
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('application', %s), ('schema', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (APPLICATION, str(number + 1)),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
    finally:
        db.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, MIGRATION_LOCK))


def _version(db: Database) -> int:
    """How many migrations the database has had (0: an empty database)."""
    if db.value("SELECT to_regclass('meta')") is None:
        tables = db.value("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
        if tables:
            raise ForeignDatabase(f"{db.location} holds tables, but is not queuectl's")
        return 0
    meta = dict(db.all("SELECT key, value FROM meta WHERE key IN ('application', 'schema')"))
    if meta.get("application") != APPLICATION:
        raise ForeignDatabase(f"{db.location} has a meta table, but is not queuectl's")
    version = int(meta.get("schema", 0))
    if version > len(MIGRATIONS):
        raise ForeignDatabase(
            f"{db.location} has schema version {version}, newer than this queuectld "
            f"understands ({len(MIGRATIONS)}); upgrade queuectld"
        )
    return version
