"""Ops on settings: config_get, config_set, config_list."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from protocol.errors import ErrorCode, ProtocolError
from queuectld.config import SETTINGS, Config
from queuectld.store import Store

if TYPE_CHECKING:
    from queuectld.daemon import Daemon

log = logging.getLogger("queuectld.config")


async def config_get(daemon: Daemon, args: dict) -> dict:
    key = args["key"]
    if key not in SETTINGS:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown setting {key!r}")
    return {"key": key, "value": daemon.config[key]}


async def config_set(daemon: Daemon, args: dict) -> dict:
    key, value = args["key"], args["value"]
    if key == "workers":
        refuse_while_stopping(daemon)
    parsed = await set_config(daemon, key, value)
    if key == "workers":
        daemon.supervisor.scale(parsed)
    if key.startswith("retention-"):
        daemon.retention.kick()
    return {"key": key, "value": parsed}


async def config_list(daemon: Daemon, args: dict) -> dict:
    return {
        key: {
            "value": daemon.config[key],
            "default": setting.default,
            "help": setting.help,
        }
        for key, setting in SETTINGS.items()
    }


def refuse_while_stopping(daemon: Daemon) -> None:
    if daemon.stopping:
        raise ProtocolError(ErrorCode.SHUTTING_DOWN, "the daemon is shutting down")


async def set_config(daemon: Daemon, key: str, value: Any) -> Any:
    try:
        parsed = Config.parse(key, value)
    except KeyError:
        raise ProtocolError(
            ErrorCode.NOT_FOUND, f"unknown setting {key!r} (settings: {', '.join(SETTINGS)})"
        ) from None
    except ValueError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{key}: {exc}") from None
    await daemon.runner.call(Store.set_config, key, str(parsed))
    daemon.config.values[key] = parsed
    log.info(
        "setting %s = %s", key, parsed, extra={"event": "config_set", "key": key, "value": parsed}
    )
    return parsed


HANDLERS = {"config_get": config_get, "config_set": config_set, "config_list": config_list}
