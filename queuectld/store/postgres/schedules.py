"""Recurring job schedules in the PostgreSQL store."""

from __future__ import annotations

from queuectld.store import rules
from queuectld.store.base import Schedule
from queuectld.store.postgres.connection import Database
from queuectld.store.rows import SCHEDULE_COLUMNS, schedule_from_row, schedule_values

UPDATABLE = ("paused", "fired_through", "next_fire", "last_job")
_MARKS = ", ".join(["%s"] * (SCHEDULE_COLUMNS.count(",") + 1))
_REPLACE = ", ".join(f"{column} = excluded.{column}" for column in SCHEDULE_COLUMNS.split(", ")[1:])


class ScheduleMixin:
    db: Database

    def add_schedule(self, schedule: Schedule, replace: bool) -> None:
        env_id = self._environment_id(schedule.cwd, schedule.environ)
        action = f"DO UPDATE SET {_REPLACE}" if replace else "DO NOTHING"
        added = self.db.rowcount(
            f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({_MARKS}) "
            f"ON CONFLICT (name) {action}",
            schedule_values(schedule, env_id),
        )
        if not added:
            raise rules.schedule_exists(schedule.name)

    def get_schedules(self, name: str | None = None) -> list[Schedule]:
        sql = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
        params: tuple = ()
        if name is not None:
            sql += " WHERE name = %s"
            params = (name,)
        schedules = []
        for row in self.db.all(sql + " ORDER BY name", params):
            cwd, environ = self._environment(row[6])
            schedules.append(schedule_from_row(row, cwd, environ))
        if name is not None and not schedules:
            raise rules.no_schedule(name)
        return schedules

    def remove_schedule(self, name: str) -> None:
        if not self.db.rowcount("DELETE FROM schedules WHERE name = %s", (name,)):
            raise rules.no_schedule(name)

    def update_schedule(self, name: str, changes: dict) -> None:
        rules.check_fields(changes, UPDATABLE, "cannot change schedule field")
        if not changes:
            return
        # Column names come from UPDATABLE, never from the caller.
        assignments = ", ".join(f"{key} = %s" for key in changes)
        values = [bool(v) if key == "paused" else v for key, v in changes.items()]
        if not self.db.rowcount(
            f"UPDATE schedules SET {assignments} WHERE name = %s", (*values, name)
        ):
            raise rules.no_schedule(name)

    def next_schedule_fire(self) -> float | None:
        return self.db.value("SELECT min(next_fire) FROM schedules WHERE NOT paused")
