"""Queue settings and recurring schedules: plain rows, the same SQL in every backend."""

from __future__ import annotations

from abc import ABC, abstractmethod

from queuectld.store import rules
from queuectld.store.base import Schedule
from queuectld.store.rows import SCHEDULE_COLUMNS, schedule_from_row, schedule_values
from queuectld.store.shared.statements import Statements
from queuectld.store.sql import CLAIMABLE
from queuectld.store.views import QUEUE_DEFAULTS, QUEUE_FIELDS

SCHEDULE_UPDATABLE = ("paused", "fired_through", "next_fire", "last_job")
_SCHEDULE_MARKS = ", ".join(["?"] * (SCHEDULE_COLUMNS.count(",") + 1))
_SCHEDULE_REPLACE = ", ".join(
    f"{column} = excluded.{column}" for column in SCHEDULE_COLUMNS.split(", ")[1:]
)


class SettingsMixin(ABC):
    sql: Statements

    # -- queues ----------------------------------------------------------------

    def queue_settings(self) -> dict[str, dict]:
        rows = self.sql.all("SELECT name, concurrency, priority, paused, on_finish FROM queues")
        return {
            name: {
                "concurrency": concurrency,
                "priority": priority,
                "paused": bool(paused),
                "on_finish": on_finish,
            }
            for name, concurrency, priority, paused, on_finish in rows
        }

    def set_queue(self, name: str, changes: dict) -> dict:
        rules.check_fields(changes, QUEUE_FIELDS, "unknown queue setting")
        self.sql.rowcount("INSERT INTO queues (name) VALUES (?) ON CONFLICT DO NOTHING", (name,))
        for key, value in changes.items():
            if key == "paused":
                value = bool(value)
            # Column names come from QUEUE_FIELDS, never from the caller.
            self.sql.rowcount(f"UPDATE queues SET {key} = ? WHERE name = ?", (value, name))
        return {**QUEUE_DEFAULTS, **self.queue_settings()[name]}

    def _earliest_claimable(self, queue: str) -> float | None:
        return self.sql.value(
            f"SELECT min(run_at) FROM jobs WHERE queue = ? AND {CLAIMABLE}", (queue,)
        )

    # -- schedules ---------------------------------------------------------------

    def add_schedule(self, schedule: Schedule, replace: bool) -> None:
        env_id = self._environment_id(schedule.cwd, schedule.environ)
        action = f"DO UPDATE SET {_SCHEDULE_REPLACE}" if replace else "DO NOTHING"
        added = self.sql.rowcount(
            f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({_SCHEDULE_MARKS}) "
            f"ON CONFLICT (name) {action}",
            schedule_values(schedule, env_id),
        )
        if not added:
            raise rules.schedule_exists(schedule.name)

    def get_schedules(self, name: str | None = None) -> list[Schedule]:
        sql = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
        params: tuple = ()
        if name is not None:
            sql += " WHERE name = ?"
            params = (name,)
        schedules = []
        for row in self.sql.all(sql + " ORDER BY name", params):
            cwd, environ = self._environment(row[6])
            schedules.append(schedule_from_row(row, cwd, environ))
        if name is not None and not schedules:
            raise rules.no_schedule(name)
        return schedules

    def remove_schedule(self, name: str) -> None:
        if not self.sql.rowcount("DELETE FROM schedules WHERE name = ?", (name,)):
            raise rules.no_schedule(name)

    def update_schedule(self, name: str, changes: dict) -> None:
        rules.check_fields(changes, SCHEDULE_UPDATABLE, "cannot change schedule field")
        if not changes:
            return
        # Column names come from SCHEDULE_UPDATABLE, never from the caller.
        assignments = ", ".join(f"{key} = ?" for key in changes)
        values = [bool(v) if key == "paused" else v for key, v in changes.items()]
        if not self.sql.rowcount(
            f"UPDATE schedules SET {assignments} WHERE name = ?", (*values, name)
        ):
            raise rules.no_schedule(name)

    def next_schedule_fire(self) -> float | None:
        return self.sql.value("SELECT min(next_fire) FROM schedules WHERE NOT paused")

    @abstractmethod
    def _environment_id(self, cwd: str, environ: dict[str, str]) -> int: ...

    @abstractmethod
    def _environment(self, env_id: int) -> tuple[str, dict[str, str]]: ...
