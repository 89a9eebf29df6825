"""`queuectl config`: settings kept by the daemon."""

from __future__ import annotations

import click

from queuectl_client.cli.context import Settings, pass_settings, print_json
from queuectl_client.cli.format import table


def register(cli: click.Group) -> None:
    cli.add_command(config)


@click.group()
def config() -> None:
    """Read and change settings (persisted by the daemon)."""


@config.command("get")
@click.argument("key")
@pass_settings
def config_get(settings: Settings, key: str) -> None:
    """Print one setting.

    \b
    Example:
      queuectl config get max-retries
    """
    click.echo(_show(settings.client().config_get(key)))


@config.command("set")
@click.argument("key")
@click.argument("value")
@pass_settings
def config_set(settings: Settings, key: str, value: str) -> None:
    """Change a setting.

    \b
    Example:
      queuectl config set max-retries 5
    """
    click.echo(f"{key} = {_show(settings.client().config_set(key, value))}")


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
        (key, _show(item["value"]), _show(item["default"]), item["help"])
        for key, item in items.items()
    ]
    click.echo(table(("KEY", "VALUE", "DEFAULT", "MEANING"), rows))


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
