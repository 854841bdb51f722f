"""The `parley` command: the SDK's commands, plus any installed plugins
(``parley.cli`` entry points; the server adds ``serve`` and ``admin``).

Every command is named here with the line `parley --help` shows, and its module is
imported only when it runs (`client_sdk.cli.lazy`): `parley --help` loads typer and
nothing of the SDK, `parley send` loads the client but no audit, dossier or server
code. A plugin's entry point names a sequence of ``(name, "module:attribute",
help)`` triples in the same form, so the server's FastAPI and SQLAlchemy stay
unloaded for client commands.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from client_sdk.cli.lazy import LazyCommand, lazy_group

PLUGIN_GROUP = "parley.cli"

_CLI = "client_sdk.cli"

COMMANDS = (
    LazyCommand(
        "enroll",
        f"{_CLI}.identity:enroll",
        "Generate keys on this machine, register them, and store them encrypted.",
    ),
    LazyCommand(
        "whoami", f"{_CLI}.identity:whoami", "Show this profile's account, device, role and server."
    ),
    LazyCommand(
        "fingerprint",
        f"{_CLI}.identity:fingerprint",
        "Print the safety number you share with ACCOUNT_ID; compare it out of band.",
    ),
    LazyCommand(
        "verify",
        f"{_CLI}.identity:verify",
        "Mark ACCOUNT_ID verified if SAFETY_NUMBER matches the one you share.",
    ),
    LazyCommand("accounts", f"{_CLI}.identity:accounts", "List enrolled accounts."),
    LazyCommand(
        "invite",
        f"{_CLI}.identity:invite",
        "(Mediators) create a party account and print its one-time enrollment token.",
    ),
    LazyCommand(
        "send",
        f"{_CLI}.messages:send",
        "Encrypt and send a message, or with --file a document, to the room.",
    ),
    LazyCommand(
        "read", f"{_CLI}.messages:read", "Print the room's messages, each verified and decrypted."
    ),
    LazyCommand(
        "relay",
        f"{_CLI}.messages:relay",
        "(Mediators) pass a message on to another channel, re-encrypted and signed by you.",
    ),
    LazyCommand(
        "download",
        f"{_CLI}.documents:download",
        "Download a document, check every chunk and its hashes, and write it to -o PATH.",
    ),
    LazyCommand(
        "ack",
        f"{_CLI}.receipts:ack",
        "Sign and log a receipt: this account received and decrypted event SEQ.",
    ),
    LazyCommand(
        "receipts",
        f"{_CLI}.receipts:receipts",
        "Who acknowledged which event, and when, as the room's log proves it.",
    ),
    LazyCommand("settings", f"{_CLI}.receipts:settings_app", "This profile's settings."),
    LazyCommand(
        "config", f"{_CLI}.config:config_app", "This profile's configuration: its server URLs."
    ),
    LazyCommand("auth", f"{_CLI}.identity:auth_app", "Bearer tokens for scripting."),
    LazyCommand("keys", f"{_CLI}.identity:keys_app", "This device's encryption keys."),
    LazyCommand(
        "passphrase", f"{_CLI}.passphrase:passphrase_app", "This profile's keystore passphrase."
    ),
    LazyCommand(
        "device",
        f"{_CLI}.devices:device_app",
        "This account's devices: list, revoke, add, approve.",
    ),
    LazyCommand("room", f"{_CLI}.rooms:room_app", "Rooms and their members."),
    LazyCommand(
        "audit",
        f"{_CLI}.audit:audit_app",
        "Verify logs, export offline bundles, and cosign checkpoints as a witness.",
    ),
    LazyCommand(
        "dossier",
        f"{_CLI}.dossier:dossier_app",
        "Dossiers: committed record sets, disclosed in phases.",
    ),
    LazyCommand(
        "agree",
        f"{_CLI}.agreements:agree_app",
        "Agreements: propose a document, sign its exact hash, show who signed, verify.",
    ),
    LazyCommand(
        "uploads",
        f"{_CLI}.documents:uploads_app",
        "Document uploads begun on this profile and not sent yet.",
    ),
    LazyCommand(
        "offer",
        f"{_CLI}.offers:offer_app",
        "Sealed-offer rounds: commit, reveal, escrow, settle.",
    ),
    LazyCommand(
        "excerpt",
        f"{_CLI}.excerpt:excerpt_app",
        "Verifiable excerpts: ROOM_ID SEQ... --out FILE to make one, verify FILE to check one.",
    ),
)
"""The SDK's own commands, in the order `parley --help` lists them."""


def plugin_commands() -> list[LazyCommand]:
    """The commands installed plugins add (``parley.cli`` entry points)."""
    from importlib.metadata import entry_points  # costs more than typer: only when needed

    return [
        LazyCommand(name, target, help)
        for entry in entry_points(group=PLUGIN_GROUP)
        for name, target, help in entry.load()
    ]


def build_app() -> typer.Typer:
    """The whole `parley` command tree (no command module imported yet)."""
    app = typer.Typer(
        name="parley",
        cls=lazy_group(COMMANDS, plugin_commands),
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def parley(
        version: Annotated[
            bool,
            typer.Option(
                "--version", help="Print the version and exit.", callback=_version, is_eager=True
            ),
        ] = False,
    ) -> None:
        """Parley: end-to-end-encrypted, verifiable mediated negotiations.

        Exit codes: 0 done, 1 refused or a verification failed, 2 a usage,
        configuration or connection error, 130 interrupted. Under --json an error is
        one JSON object on stderr with "code" and "message".
        """

    return app


def main() -> None:
    """Console-script entry point."""
    # pydantic looks for plugins among every installed distribution's entry points the
    # first time it builds a model; the command line uses none, and the search costs
    # more than importing typer.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = sys.argv[1:]
    sys.exit(run_command(args))


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # not the SDK: `--version` stays fast

        print(f"parley {version('parley')}")
        raise typer.Exit(0)


def run_command(args: list[str]) -> int:
    """Run `parley ARGS...` and return its exit status: a usage error, an interrupt or
    an error a command let through is one line (JSON under ``--json``), never a
    traceback (the statuses are `common`'s)."""
    from typer._click.exceptions import ClickException
    from typer.exceptions import Abort

    from client_sdk.cli import common

    json_requested = common.expect_json(args)
    try:
        status = build_app()(args, standalone_mode=False)
    except ClickException as exc:
        if not json_requested:
            exc.show()
            return exc.exit_code
        code = "usage" if exc.exit_code == common.USAGE else "failed"
        return common.fail(exc.format_message(), exc.exit_code, code=code).exit_code
    except Abort:  # typer's word for end of input at a prompt
        return common.fail("the input ended at a prompt", common.USAGE).exit_code
    except Exception as exc:  # a user's error `describe` knows, else a bug's traceback
        return common.failed(exc).exit_code
    # typer returns the status of a `typer.Exit`, and a command's own value (None) else
    return status if isinstance(status, int) else common.OK
