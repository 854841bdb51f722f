"""`parley config`: this profile's configuration kept in its keystore (its servers)."""

from __future__ import annotations

from typing import Annotated

import typer

from client_sdk.cli.common import USAGE, fail, failed, out, print_json
from client_sdk.cli.render import inline
from client_sdk.protocol.errors import ParleyError

config_app = typer.Typer(help="This profile's configuration: its server URLs.")


@config_app.callback()
def config() -> None:
    """This profile's configuration: its server URLs."""


def check_servers(urls: list[str]) -> None:
    """A server URL that is not one is a usage error (exit 2), said before anything is
    asked or written."""
    from client_sdk.keystore.models import server_urls

    try:
        server_urls(urls)
    except ParleyError as exc:
        raise fail(str(exc), USAGE) from exc


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

    if urls:
        check_servers(urls)
    try:
        keystore = Keystore.open(default_home(), passphrase_from_env_or_prompt())
        shown = keystore.set_servers(urls) if urls else keystore.state.servers
    except ParleyError as exc:
        raise failed(exc) from exc
    if json_output:
        print_json({"servers": list(shown)})
        return
    for number, url in enumerate(shown, start=1):
        out.line(f"{number} {inline(url)}{' (preferred)' if number == 1 else ''}")
