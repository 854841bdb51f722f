"""`parley config`: this profile's configuration kept in its keystore (its servers)."""

from __future__ import annotations

from typing import Annotated

import typer

from client_sdk.cli.common import out, print_json
from client_sdk.cli.jsonerrors import failure
from client_sdk.cli.render import inline
from client_sdk.protocol.errors import ParleyError

config_app = typer.Typer(help="This profile's configuration: its server URLs.")


@config_app.callback()
def config() -> None:
    """This profile's configuration: its server URLs."""


@config_app.command("servers")
def servers(
    urls: Annotated[
        list[str] | None,
        typer.Argument(
            help="Set the list to these URLs, the preferred first (omit to show it).",
            metavar="[URL]...",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show this profile's server URLs, or set them: one deployment's replicas, the
    preferred first. When one stops answering, the client fails over to the next."""
    from client_sdk.keystore import Keystore, default_home, passphrase_from_env_or_prompt

    try:
        keystore = Keystore.open(default_home(), passphrase_from_env_or_prompt())
        shown = keystore.set_servers(urls) if urls else keystore.state.servers
    except ParleyError as exc:
        raise failure(str(exc), json_output=json_output) from exc
    if json_output:
        print_json({"servers": list(shown)})
        return
    for number, url in enumerate(shown, start=1):
        out.line(f"{number} {inline(url)}{' (preferred)' if number == 1 else ''}")
