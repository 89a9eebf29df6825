"""Named queues in the PostgreSQL store: their counts, and the claim (their settings
are plain rows: `store/shared/settings.py`).

A claim is one statement. It finds the queues that have claimable jobs (a skip
scan of the claim index: one seek per queue, whatever the number of jobs), keeps
those neither paused nor full, and takes from each up to its room of due jobs in
priority and due order (`queuectl_due_in_queue`, schema migration 2: a seek per
priority level, however many jobs are delayed), locked FOR UPDATE SKIP LOCKED so
that two daemons claiming at once take different jobs; it moves the best `limit`
of them to processing, each with a run owned by the claimer. Rows it locked but
did not take are skipped by other claimers until the batch commits, no longer.

A queue's concurrency limit counts its running jobs, which another daemon's claim
may be changing: the claims of a limited queue are serialised with a transaction
advisory lock on its name, taken before the claim statement so that its snapshot
sees the claims committed before it. Only limited queues with due jobs are locked,
so that claims elsewhere do not queue up behind them, and the statement leaves
out any limited queue it does not hold (one that became due or limited since).
"""

from __future__ import annotations

from collections import Counter

from queuectld.store.base import ClaimedJob
from queuectld.store.postgres.connection import Database
from queuectld.store.postgres.schema import LOCK_SPACE
from queuectld.store.rows import CLAIM_COLUMNS, claimed_job
from queuectld.store.sql import CLAIMABLE
from queuectld.store.views import empty_queue_counts, queue_record

# pg_advisory_xact_lock(bigint) key of a queue's claims (the one-key space does
# not overlap the two-key space of the migration lock).
QUEUE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('queuectl.queue:' || %s, 0))"
COUNT_FOLD_LOCK = 2  # with LOCK_SPACE: one daemon at a time folds job_counts
FOLD_AT = 1000  # delta rows in job_counts beyond which a reader folds them

_J_CLAIMABLE = "j." + CLAIMABLE.replace(" AND ", " AND j.")  # CLAIMABLE, of jobs j
# The queues with claimable jobs, each once, with what may start there now: its
# priority, and its room (NULL: no limit). Only the open ones.
_OPEN_QUEUES = f"""
WITH RECURSIVE waiting (queue) AS (
    (SELECT queue FROM jobs WHERE {CLAIMABLE} ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT j.queue FROM jobs j WHERE {_J_CLAIMABLE} AND j.queue > w.queue
            ORDER BY j.queue LIMIT 1)
    FROM waiting w WHERE w.queue IS NOT NULL
),
open_queues AS (
    SELECT w.queue AS name, coalesce(q.priority, 0) AS priority,
           CASE WHEN coalesce(q.concurrency, 0) > 0 THEN q.concurrency - (
               SELECT count(*) FROM jobs r WHERE r.queue = w.queue AND r.state = 'processing'
           ) END AS room
    FROM waiting w LEFT JOIN queues q ON q.name = w.queue
    WHERE w.queue IS NOT NULL AND NOT coalesce(q.paused, false) {{limited}}
)
"""

# A limited queue only when this claim holds its lock.
_HELD = "AND (coalesce(q.concurrency, 0) = 0 OR w.queue = ANY(%(locked)s))"
_CLAIM = (
    _OPEN_QUEUES.format(limited=_HELD)
    + f""",
picked AS (
    SELECT c.seq, c.state AS prior_state, o.priority AS queue_priority, c.priority, c.run_at
    FROM open_queues o CROSS JOIN LATERAL queuectl_due_in_queue(
        o.name, %(now)s, least(coalesce(o.room, %(limit)s), %(limit)s)::integer
    ) AS c (seq, state, priority, run_at)
    ORDER BY o.priority DESC, c.priority DESC, c.run_at, c.seq
    LIMIT %(limit)s
),
claimed AS (
    UPDATE jobs j SET state = 'processing', runs = j.runs + 1, started_at = %(now)s,
                      updated_at = %(now)s
    FROM picked p WHERE j.seq = p.seq
    RETURNING {", ".join("j." + c for c in CLAIM_COLUMNS.split(", "))},
              p.prior_state, p.queue_priority, p.priority AS job_priority
),
runs_added AS (
    INSERT INTO runs (job_seq, run, started_at, due_at, outcome, owner)
    SELECT seq, runs, %(now)s, run_at, 'running', %(owner)s FROM claimed
)
SELECT {CLAIM_COLUMNS}, prior_state FROM claimed
ORDER BY queue_priority DESC, job_priority DESC, run_at, seq
"""
)

_NEXT_DUE = (
    _OPEN_QUEUES.format(limited="")
    + f"""
SELECT min(m.due) FROM open_queues o CROSS JOIN LATERAL (
    SELECT min(j.run_at) AS due FROM jobs j WHERE j.queue = o.name AND {_J_CLAIMABLE}
) m
WHERE o.room IS NULL OR o.room > 0
"""
)


_DUE_LIMITED = f"""
SELECT q.name FROM queues q WHERE q.concurrency > 0 AND NOT q.paused AND EXISTS (
    SELECT 1 FROM jobs j WHERE j.queue = q.name AND {_J_CLAIMABLE} AND j.run_at <= %s
) ORDER BY q.name
"""


class QueueMixin:
    db: Database

    # -- counts --------------------------------------------------------------

    def _job_counts(self) -> Counter[tuple[str, str]]:
        """Jobs by (queue, state), summed from the deltas the triggers append."""
        counts: Counter[tuple[str, str]] = Counter()
        rows = 0
        for queue, state, n, deltas in self.db.all(
            "SELECT queue, state, sum(n)::bigint, count(*) FROM job_counts GROUP BY queue, state"
        ):
            counts[(queue, state)] = n
            rows += deltas
        if rows > FOLD_AT:
            self._fold_job_counts()
        return counts

    def _fold_job_counts(self) -> None:
        """Replace the deltas by one row per (queue, state). Deltas that other
        transactions append meanwhile are not in this statement's snapshot and stay."""
        folding = "SELECT pg_try_advisory_xact_lock(%s, %s)"
        if not self.db.value(folding, (LOCK_SPACE, COUNT_FOLD_LOCK)):
            return  # another daemon is folding them
        self.db.execute(
            "WITH gone AS (DELETE FROM job_counts RETURNING queue, state, n) "
            "INSERT INTO job_counts (queue, state, n) "
            "SELECT queue, state, sum(n) FROM gone GROUP BY queue, state HAVING sum(n) <> 0"
        )

    def queue_counts(self, queue: str) -> dict[str, int]:
        counts = empty_queue_counts()
        counts.update(
            self.db.all(
                "SELECT state, sum(n)::bigint FROM job_counts WHERE queue = %s GROUP BY state",
                (queue,),
            )
        )
        return counts

    def queue_overview(self, now: float) -> list[dict]:
        settings = self.queue_settings()
        counts: dict[str, dict[str, int]] = {}
        for (queue, state), n in self._job_counts().items():
            if n > 0:
                counts.setdefault(queue, empty_queue_counts())[state] = n
        return [
            queue_record(
                name, settings.get(name), counts.get(name), self._earliest_claimable(name), now
            )
            for name in sorted(set(settings) | set(counts))
        ]

    # -- claiming ------------------------------------------------------------

    def claim_due_jobs(self, now: float, limit: int, owner: str) -> list[ClaimedJob]:
        if limit <= 0:
            return []
        # In name order, so that two daemons taking several never deadlock on them.
        locked = [name for (name,) in self.db.all(_DUE_LIMITED, (now,))]
        for name in locked:
            self.db.execute(QUEUE_LOCK, (name,))
        rows = self.db.all(_CLAIM, {"now": now, "limit": limit, "owner": owner, "locked": locked})
        claimed = []
        for *row, prior_state in rows:
            cwd, environ = self._environment(row[8])
            claimed.append(claimed_job(tuple(row), cwd, environ, prior_state))
        return claimed

    def next_due_time(self) -> float | None:
        return self.db.value(_NEXT_DUE)
