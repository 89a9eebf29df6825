"""Recurring job schedules in the SQLite store."""

from __future__ import annotations

import sqlite3

import msgpack

from queuectld.store import rules
from queuectld.store.base import Schedule

SCHEDULE_COLUMNS = (
    "name, cron, tz, catch_up, paused, job, env_id, created_at, fired_through, next_fire, "
    "last_job, run_uid, run_gid"
)
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
                (
                    schedule.name,
                    schedule.cron,
                    schedule.tz,
                    schedule.catch_up,
                    int(schedule.paused),
                    msgpack.packb(schedule.job, use_bin_type=True),
                    env_id,
                    schedule.created_at,
                    schedule.fired_through,
                    schedule.next_fire,
                    schedule.last_job,
                    schedule.run_uid,
                    schedule.run_gid,
                ),
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
            (
                row_name,
                cron,
                tz,
                catch_up,
                paused,
                job,
                env_id,
                created_at,
                fired_through,
                next_fire,
                last_job,
                run_uid,
                run_gid,
            ) = row
            cwd, environ = self._environment(env_id)
            schedules.append(
                Schedule(
                    name=row_name,
                    cron=cron,
                    tz=tz,
                    catch_up=catch_up,
                    paused=bool(paused),
                    job=msgpack.unpackb(job, raw=False),
                    cwd=cwd,
                    environ=environ,
                    created_at=created_at,
                    fired_through=fired_through,
                    next_fire=next_fire,
                    last_job=last_job,
                    run_uid=run_uid,
                    run_gid=run_gid,
                )
            )
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
