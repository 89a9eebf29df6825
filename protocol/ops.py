"""Every op the daemon understands, with its arguments, in the sections of
docs/PROTOCOL.md 8 (one handler module and one CLI module per section carry the
same name; tests/test_ops.py holds the three together).

The spec is the prose form of this module and must change with it.
"""

from __future__ import annotations

from protocol.schema import MAX_NAME_BYTES, MAX_SECONDS, Field

_NAME = {"name": Field("str", required=True, nonempty=True, max_bytes=MAX_NAME_BYTES)}
_PAGE = {"limit": Field("int", minimum=1), "after": Field("int", minimum=0)}

ON_DUPLICATE = ("ignore", "error")
# Far beyond any real expression or IANA zone name; an error message quotes them.
MAX_CRON_BYTES = 1024
MAX_TZ_BYTES = 64

SESSION = {
    "hello": {"client": Field("str"), "protocol": Field("int"), "token": Field("str")},
    "shutdown": {"now": Field("bool")},
}

JOBS = {
    "enqueue": {
        "jobs": Field("list", required=True, nonempty=True),
        "cwd": Field("str", absolute=True),
        "environ": Field("str_map", environment=True),
        "on_duplicate": Field("str"),
    },
    "get_job": {"id": Field("str", required=True)},
    # A string or an array of strings; the handler checks which.
    "list_jobs": {"state": Field("any"), "queue": Field("str"), **_PAGE},
    "cancel": {"id": Field("str", required=True)},
    "wait": {
        "ids": Field("str_list", required=True, nonempty=True),
        "timeout": Field("number", minimum=0),
    },
    "logs": {
        "id": Field("str", required=True),
        "run": Field("int", minimum=1),
        "offset": Field("int", minimum=0),
        "limit": Field("int", minimum=1),
        "wait": Field("number", minimum=0),
    },
    "retry": {"id": Field("str", required=True)},
    "edit": {
        "id": Field("str", required=True),
        "command": Field("str", nonempty=True),
        "priority": Field("int"),
        "run_at": Field("str", nonempty=True, max_bytes=64),
        "delay": Field("number", minimum=0, maximum=MAX_SECONDS),
        "queue": Field("str", nonempty=True, max_bytes=MAX_NAME_BYTES),
    },
    "purge": {
        "state": Field("str", required=True),
        "older_than": Field("number", required=True, minimum=0),
        "queue": Field("str"),
    },
}

DLQ = {
    "dlq_list": {"queue": Field("str"), **_PAGE},
    "dlq_retry": {
        "id": Field("str"),
        "all": Field("bool"),
        "queue": Field("str"),
        "since": Field("str", nonempty=True),
    },
    "dlq_purge": {"id": Field("str"), "all": Field("bool")},
}

FLEET = {
    "status": {"next": Field("int", minimum=0), "processes": Field("bool")},
    "worker_scale": {"count": Field("int", minimum=0)},
    "worker_stop": {"now": Field("bool"), "wait": Field("bool")},
    "worker_drain": {"wait": Field("bool"), "timeout": Field("number", minimum=0)},
    "worker_resume": {},
}

QUEUES = {
    "queue_set": {
        **_NAME,
        "concurrency": Field("int", minimum=0),
        "priority": Field("int"),
        "on_finish": Field("str"),
    },
    "queue_list": {},
    "queue_pause": _NAME,
    "queue_resume": _NAME,
}

SCHEDULES = {
    "schedule_add": {
        **_NAME,
        "cron": Field("str", required=True, nonempty=True, max_bytes=MAX_CRON_BYTES),
        "tz": Field("str", nonempty=True, max_bytes=MAX_TZ_BYTES),
        "catch_up": Field("str"),
        "job": Field("map", required=True),
        "replace": Field("bool"),
        "cwd": Field("str", absolute=True),
        "environ": Field("str_map", environment=True),
    },
    "schedule_list": {},
    "schedule_remove": _NAME,
    "schedule_pause": _NAME,
    "schedule_resume": _NAME,
    "schedule_run": _NAME,
}

SETTINGS = {
    "config_get": {"key": Field("str", required=True)},
    "config_set": {"key": Field("str", required=True), "value": Field("scalar", required=True)},
    "config_list": {},
}

MONITORING = {
    "stats": {"queue": Field("str", nonempty=True), "per_minute": Field("bool")},
    "complete_ids": {
        "prefix": Field("str"),
        "states": Field("str_list"),
        "limit": Field("int", minimum=1),
    },
    "watch": {"interval": Field("number", minimum=0.2, maximum=60)},
}

# Section name (the handler and CLI module) -> op name -> argument fields.
SECTIONS: dict[str, dict[str, dict[str, Field]]] = {
    "session": SESSION,
    "jobs": JOBS,
    "dlq": DLQ,
    "fleet": FLEET,
    "queues": QUEUES,
    "schedules": SCHEDULES,
    "settings": SETTINGS,
    "monitoring": MONITORING,
}

OPS: dict[str, dict[str, Field]] = {
    op: fields for section in SECTIONS.values() for op, fields in section.items()
}
