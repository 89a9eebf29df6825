"""Ops that control what runs when: queues, draining, re-running and editing jobs,
purging, recurring schedules. Part of OPS (protocol/messages.py); documented in
docs/PROTOCOL.md."""

from __future__ import annotations

from protocol.schema import MAX_NAME_BYTES, Field

_NAME = {"name": Field("str", required=True, nonempty=True, max_bytes=MAX_NAME_BYTES)}

CONTROL_OPS: dict[str, dict[str, Field]] = {
    "queue_set": {
        **_NAME,
        "concurrency": Field("int", minimum=0),
        "priority": Field("int"),
        "on_finish": Field("str"),
    },
    "queue_list": {},
    "queue_pause": _NAME,
    "queue_resume": _NAME,
    "worker_drain": {"wait": Field("bool"), "timeout": Field("number", minimum=0)},
    "worker_resume": {},
    "retry": {"id": Field("str", required=True)},
    "edit": {
        "id": Field("str", required=True),
        "command": Field("str", nonempty=True),
        "priority": Field("int"),
        "run_at": Field("str", nonempty=True),
        "delay": Field("number", minimum=0),
        "queue": Field("str", nonempty=True, max_bytes=MAX_NAME_BYTES),
    },
    "purge": {
        "state": Field("str", required=True),
        "older_than": Field("number", required=True, minimum=0),
        "queue": Field("str"),
    },
    "schedule_add": {
        **_NAME,
        "cron": Field("str", required=True, nonempty=True),
        "tz": Field("str", nonempty=True),
        "catch_up": Field("str"),
        "job": Field("map", required=True),
        "replace": Field("bool"),
        "cwd": Field("str"),
        "environ": Field("str_map"),
    },
    "schedule_list": {},
    "schedule_remove": _NAME,
    "schedule_pause": _NAME,
    "schedule_resume": _NAME,
}

ON_DUPLICATE = ("ignore", "error")
