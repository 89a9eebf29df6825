"""`queuectl config`: settings kept by the daemon."""

from __future__ import annotations

import click

from queuectl_client.cli.completion import complete_setting_keys
from queuectl_client.cli.context import Settings, pass_settings, print_json
from queuectl_client.cli.format import table


def register(cli: click.Group) -> None:
    cli.add_command(config)


@click.group()
def config() -> None:
    """Read and change settings (persisted by the daemon)."""


@config.command("get")
@click.argument("key", shell_complete=complete_setting_keys)
@click.option("--json", "as_json", is_flag=True, help='Print {"key": ..., "value": ...}.')
@pass_settings
def config_get(settings: Settings, key: str, as_json: bool) -> None:
    """Print one setting.

    \b
    Example:
      queuectl config get max-retries
    """
    entry = settings.client().config_entry(key)
    if as_json:
        print_json(entry)
        return
    click.echo(_show_entry(entry))


# A negative value (`config set max-retries -3`) is a value, not an option; the
# daemon's range check then says what is wrong with it.
@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key", shell_complete=complete_setting_keys)
@click.argument("value")
@click.option("--json", "as_json", is_flag=True, help='Print {"key": ..., "value": ...}.')
@pass_settings
def config_set(settings: Settings, key: str, value: str, as_json: bool) -> None:
    """Change a setting.

    \b
    Example:
      queuectl config set max-retries 5
    """
    parsed = settings.client().config_set(key, value)
    if as_json:
        print_json({"key": key, "value": parsed})
        return
    click.echo(f"{key} = {_show(parsed)}")


@config.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print settings as JSON.")
@pass_settings
def config_list(settings: Settings, as_json: bool) -> None:
    """List every setting with its value, default and meaning.

    \b
    Example:
      queuectl config list
    """
    items = settings.client().config_list()
    if as_json:
        print_json(items)
        return
    rows = [
        (key, _show_entry(item), _show(item["default"]), item.get("scope", ""), item["help"])
        for key, item in items.items()
    ]
    click.echo(table(("KEY", "VALUE", "DEFAULT", "SCOPE", "MEANING"), rows))


def _show_entry(entry: dict) -> str:
    source = entry.get("source")
    return _show(entry["value"]) + (f" (from {source})" if source else "")


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
