"""Named queues in the SQLite store: their counts, and which of their jobs may be
claimed now (their settings are plain rows: `store/shared/settings.py`).

Claiming goes queue by queue so that a paused queue, or one at its concurrency
limit, costs nothing however many jobs it holds: only queues that may start a
job are looked at, and each is read through the `jobs_due_in_queue` index.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

from queuectld.store.sql import CLAIMABLE, WAITING
from queuectld.store.views import QUEUE_DEFAULTS, empty_queue_counts, queue_record

# Distinct priority levels read one by one per queue before falling back to one
# ordered scan; see _due_in_queue.
MAX_PRIORITY_LEVELS = 32


class QueueMixin:
    conn: sqlite3.Connection

    # -- counts --------------------------------------------------------------

    def count_new_jobs(self, added: Counter[tuple[str, str]]) -> None:
        """Add newly inserted jobs, by (queue, state), to both count tables. Every
        insert into jobs calls this in the same savepoint, so a failed insert undoes
        its count too (no trigger counts inserts since schema migration 5)."""
        by_state: Counter[str] = Counter()
        for (_, state), n in added.items():
            by_state[state] += n
        self.conn.executemany(
            "INSERT INTO queue_counts (queue, state, n) VALUES (?, ?, ?) "
            "ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n",
            [(queue, state, n) for (queue, state), n in added.items()],
        )
        self.conn.executemany(
            "UPDATE job_counts SET n = n + ? WHERE state = ?",
            [(n, state) for state, n in by_state.items()],
        )

    def queue_counts(self, queue: str) -> dict[str, int]:
        counts = empty_queue_counts()
        counts.update(
            self.conn.execute(
                "SELECT state, n FROM queue_counts WHERE queue = ?", (queue,)
            ).fetchall()
        )
        return counts

    def queue_overview(self, now: float) -> list[dict]:
        settings = self.queue_settings()
        counts: dict[str, dict[str, int]] = {}
        for queue, state, n in self.conn.execute(
            "SELECT queue, state, n FROM queue_counts WHERE n > 0"
        ):
            counts.setdefault(queue, empty_queue_counts())[state] = n
        return [
            queue_record(
                name, settings.get(name), counts.get(name), self._earliest_claimable(name), now
            )
            for name in sorted(set(settings) | set(counts))
        ]

    # -- claiming ------------------------------------------------------------

    def _open_queues(self) -> list[tuple[str, int, int]]:
        """(name, room, queue priority) of each queue with waiting jobs that may start one.

        room is how many more jobs it may run now (None when it has no limit).
        """
        settings = self.queue_settings()
        running = dict(
            self.conn.execute(
                "SELECT queue, n FROM queue_counts WHERE state = 'processing'"
            ).fetchall()
        )
        waiting = self.conn.execute(
            f"SELECT DISTINCT queue FROM queue_counts WHERE state IN {WAITING} AND n > 0"
        ).fetchall()
        open_queues = []
        for (name,) in waiting:
            queue = settings.get(name, QUEUE_DEFAULTS)
            if queue["paused"]:
                continue
            room = None
            if queue["concurrency"]:
                room = queue["concurrency"] - running.get(name, 0)
                if room <= 0:
                    continue
            open_queues.append((name, room, queue["priority"]))
        return open_queues

    def _claimable_seqs(self, now: float, limit: int) -> dict[int, str]:
        """The seqs to claim, best first (queue priority, job priority, due time, age),
        each with its state now."""
        candidates = []
        for name, room, queue_priority in self._open_queues():
            take = limit if room is None else min(room, limit)
            for priority, run_at, seq, state in self._due_in_queue(name, now, take):
                candidates.append((-queue_priority, -priority, run_at, seq, state))
        candidates.sort()
        return {candidate[3]: candidate[4] for candidate in candidates[:limit]}

    def _due_in_queue(self, queue: str, now: float, limit: int) -> list[tuple]:
        """Up to `limit` due jobs of a queue in claim order.

        The index is ordered by priority first, so a plain ordered scan with
        `run_at <= now` would walk every not-yet-due job of a higher priority
        (a million delayed jobs, say) before reaching a due one. Instead each
        priority level present is visited with a range scan on run_at: cost per
        level is a seek, whatever the number of delayed jobs.
        """
        level = self.conn.execute(
            f"SELECT max(priority) FROM jobs WHERE queue = ? AND {CLAIMABLE}", (queue,)
        ).fetchone()[0]
        rows: list[tuple] = []
        for _ in range(MAX_PRIORITY_LEVELS):
            if level is None or len(rows) >= limit:
                return rows
            rows += self.conn.execute(
                f"SELECT priority, run_at, seq, state FROM jobs WHERE queue = ? AND {CLAIMABLE} "
                "AND priority = ? AND run_at <= ? ORDER BY run_at, seq LIMIT ?",
                (queue, level, now, limit - len(rows)),
            ).fetchall()
            level = self.conn.execute(
                f"SELECT max(priority) FROM jobs WHERE queue = ? AND {CLAIMABLE} AND priority < ?",
                (queue, level),
            ).fetchone()[0]
        if level is not None and len(rows) < limit:
            # Very many distinct priorities: finish with one ordered scan.
            rows += self.conn.execute(
                f"SELECT priority, run_at, seq, state FROM jobs WHERE queue = ? AND {CLAIMABLE} "
                "AND priority <= ? AND run_at <= ? ORDER BY priority DESC, run_at, seq LIMIT ?",
                (queue, level, now, limit - len(rows)),
            ).fetchall()
        return rows

    def next_due_time(self) -> float | None:
        times = [self._earliest_claimable(name) for name, _, _ in self._open_queues()]
        times = [t for t in times if t is not None]
        return min(times) if times else None
