"""Ops on settings: config_get, config_set, config_list."""

from __future__ import annotations

import logging
from typing import Any

from protocol.errors import ErrorCode, ProtocolError
from queuectld.config import SETTINGS, scope, stored_key
from queuectld.fleet.supervisor import fleet_size_error
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.limits import connection_room
from queuectld.store import Store

log = logging.getLogger("queuectld.config")


def _entry(ctx: HandlerContext, key: str) -> dict:
    """The value in force, and where it came from when that is not the stored value."""
    entry = {"value": ctx.config[key], "scope": scope(key)}
    source = ctx.config.sources.get(key)
    if source is not None:
        entry["source"] = source
    return entry


async def config_get(ctx: HandlerContext, args: dict) -> dict:
    key = args["key"]
    if key not in SETTINGS:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown setting {key!r}")
    return {"key": key, **_entry(ctx, key)}


async def config_set(ctx: HandlerContext, args: dict) -> dict:
    key, value = args["key"], args["value"]
    if key == "workers":
        refuse_while_stopping(ctx)
    # Through change_rules: the other daemons of a shared store take the new value too.
    parsed = await ctx.dispatcher.change_rules(
        lambda: set_config(ctx, key, value), kick=key != "workers"
    )
    if key == "workers":
        ctx.supervisor.scale(parsed)
    if key.startswith("retention-"):
        ctx.retention.kick()
    return {"key": key, "value": parsed}


async def config_list(ctx: HandlerContext, args: dict) -> dict:
    return {
        key: {**_entry(ctx, key), "default": setting.default, "help": setting.help}
        for key, setting in SETTINGS.items()
    }


def refuse_while_stopping(ctx: HandlerContext) -> None:
    if ctx.is_stopping():
        raise ProtocolError(ErrorCode.SHUTTING_DOWN, "the daemon is shutting down")


def check_fleet_size(ctx: HandlerContext, count: int) -> None:
    """Every way of sizing the fleet (worker_scale, config_set of workers) passes here."""
    error = fleet_size_error(count, ctx.supervisor.max_workers)
    if error is not None:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"workers: {error}")


def check_connection_room(ctx: HandlerContext, count: int) -> None:
    room = connection_room(ctx.supervisor.target)
    if room is not None and count > room[1]:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"max-connections: {count} is more than the open-file limit leaves room for "
            f"(ulimit -n is {room[0]}: at most {room[1]} connections)",
        )


# Limits of what this daemon can do, checked before the setting's own range:
# they are the ones a user can act on.
_IN_FORCE_CHECKS = {"workers": check_fleet_size, "max-connections": check_connection_room}


def parse_setting(ctx: HandlerContext, key: str, value: Any) -> Any:
    setting = SETTINGS.get(key)
    if setting is None:
        raise ProtocolError(
            ErrorCode.NOT_FOUND, f"unknown setting {key!r} (settings: {', '.join(SETTINGS)})"
        )
    try:
        parsed = setting.read(str(value).strip())
        if key in _IN_FORCE_CHECKS:
            _IN_FORCE_CHECKS[key](ctx, parsed)
        return setting.check(parsed)
    except ValueError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{key}: {exc}") from None


async def set_config(ctx: HandlerContext, key: str, value: Any) -> Any:
    parsed = parse_setting(ctx, key, value)
    daemon = ctx.daemon_id if ctx.shared_store else None
    await ctx.runner.call(Store.set_config, stored_key(key, daemon), str(parsed))
    ctx.config.set(key, parsed)
    log.info(
        "setting %s = %s", key, parsed, extra={"event": "config_set", "key": key, "value": parsed}
    )
    return parsed


HANDLERS = {"config_get": config_get, "config_set": config_set, "config_list": config_list}
