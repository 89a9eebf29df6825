"""Recurring job schedules in the SQLite store."""

from __future__ import annotations

import sqlite3

from queuectld.store import rules
from queuectld.store.base import Schedule
from queuectld.store.rows import SCHEDULE_COLUMNS, schedule_from_row, schedule_values

UPDATABLE = ("paused", "fired_through", "next_fire", "last_job")


class ScheduleMixin:
    conn: sqlite3.Connection

    def add_schedule(self, schedule: Schedule, replace: bool) -> None:
        env_id = self._environment_id(schedule.cwd, schedule.environ)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            self.conn.execute(
                f"{verb} INTO schedules ({SCHEDULE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                schedule_values(schedule, env_id),
            )
        except sqlite3.IntegrityError:
            raise rules.schedule_exists(schedule.name) from None

    def get_schedules(self, name: str | None = None) -> list[Schedule]:
        sql = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
        params: tuple = ()
        if name is not None:
            sql += " WHERE name = ?"
            params = (name,)
        schedules = []
        for row in self.conn.execute(sql + " ORDER BY name", params).fetchall():
            cwd, environ = self._environment(row[6])
            schedules.append(schedule_from_row(row, cwd, environ))
        if name is not None and not schedules:
            raise rules.no_schedule(name)
        return schedules

    def remove_schedule(self, name: str) -> None:
        if not self.conn.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount:
            raise rules.no_schedule(name)

    def update_schedule(self, name: str, changes: dict) -> None:
        rules.check_fields(changes, UPDATABLE, "cannot change schedule field")
        if not changes:
            return
        # Column names come from UPDATABLE, never from the caller.
        assignments = ", ".join(f"{key} = ?" for key in changes)
        values = [int(v) if isinstance(v, bool) else v for v in changes.values()]
        if not self.conn.execute(
            f"UPDATE schedules SET {assignments} WHERE name = ?", (*values, name)
        ).rowcount:
            raise rules.no_schedule(name)

    def next_schedule_fire(self) -> float | None:
        return self.conn.execute(
            "SELECT min(next_fire) FROM schedules WHERE paused = 0"
        ).fetchone()[0]
