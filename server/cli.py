"""The server's commands, plugged into the `parley` command line.

``parley serve`` runs the server; ``parley admin enroll`` creates an account
and prints its one-time enrollment token, and ``parley admin revoke`` revokes a
device or a whole account, both working on the database directly (there is no
admin HTTP surface). Both read the same ``PARLEY_*`` settings.
The SDK's command line finds these commands through the ``parley.cli`` entry
point (`server.cli_commands`), so the SDK never imports the server, and imports
this module only when one of its commands runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from client_sdk.protocol.models import Role
from server.cli_common import fail as _fail
from server.cli_common import settings as _settings
from server.cli_common import startup_errors as _startup_errors
from server.config import Settings

if TYPE_CHECKING:
    from server.services.devices import RevocationDone
    from server.services.identity import EnrollmentTicket
    from server.storage.database import Database

admin_app = typer.Typer(help="Operator commands that work on the server's database.")


def _settings_help() -> str:
    lines = ["Settings (environment variables):"]
    for name, info in Settings.model_fields.items():
        value = info.get_default(call_default_factory=True)
        default = "none" if value in (None, "") else value
        lines.append(f"  PARLEY_{name.upper()}: {info.description} [default: {default}]")
    return "\n\n".join(lines)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (PARLEY_DATA_DIR).")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (PARLEY_DATABASE_URL).")
    ] = None,
    migrate: Annotated[
        bool, typer.Option(help="Upgrade the schema on start (PARLEY_AUTO_MIGRATE).")
    ] = True,
    log_level: Annotated[
        str | None, typer.Option(help="Log level (PARLEY_LOG_LEVEL; default info).")
    ] = None,
) -> None:
    """Run the Parley server (SQLite in the data directory unless a database URL is set)."""
    from server.app import create_app
    from server.serving import run
    from server.startup import preflight
    from server.storage.data_lock import data_dir_lock

    overrides: dict[str, object] = {"auto_migrate": migrate}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    if log_level is not None:
        overrides["log_level"] = log_level
    settings = _settings(**overrides)
    with _startup_errors(), contextlib.ExitStack() as held:
        if settings.resolved_database_url().startswith("sqlite"):
            held.enter_context(data_dir_lock(settings.data_dir))
        asyncio.run(preflight(settings))
        settings = settings.model_copy(update={"auto_migrate": False})  # migrated just now
        run(create_app(settings), settings, host=host, port=port)


serve.__doc__ = f"{serve.__doc__}\n\n{_settings_help()}"


@admin_app.command("enroll")
def enroll(
    role: Annotated[Role, typer.Option(help="The account's role.")],
    name: Annotated[str, typer.Option(help="The person's display name.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an account and print its one-time enrollment token alone on stdout."""
    with _startup_errors(json_output):
        ticket = asyncio.run(_enroll(_settings(), role, name))
    if json_output:
        import json

        typer.echo(
            json.dumps(
                {
                    "account_id": ticket.account_id,
                    "token": ticket.token,
                    "expires_at": ticket.expires_at,
                }
            )
        )
    else:
        typer.echo(ticket.token)


@admin_app.command("revoke")
def revoke(
    target: Annotated[
        str, typer.Argument(metavar="ACCOUNT_ID|DEVICE_ID", help="A device, or a whole account.")
    ],
    reason: Annotated[str, typer.Option(help="Why (logged with the revocation).")] = "",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Revoke a device, or every device of an account, signed by the server's log key.

    The revocation is a directory leaf every client checks; the devices' tokens are
    refused at once, their streams closed within a second, and every room that lists
    them is flagged for re-keying. An account revoked whole cannot link new devices.
    """
    from server.errors import DomainError

    try:
        with _startup_errors(json_output):
            done = asyncio.run(_revoke(_settings(), target, reason))
    except DomainError as exc:
        _fail(exc.message, json_output)
    summary = {
        "account_id": done.account_id,
        "revoked_devices": done.device_ids,
        "leaf_index": done.appended.index,
        "checkpoint": done.appended.checkpoint,
    }
    if json_output:
        import json

        typer.echo(json.dumps(summary))
    else:
        devices = ", ".join(done.device_ids) or "no active devices"
        typer.echo(
            f"Revoked {devices} of account {done.account_id} "
            f"(directory leaf {done.appended.index})."
        )


async def _revoke(settings: Settings, target: str, reason: str) -> RevocationDone:
    from server.log.appender import LogWriter
    from server.realtime.fanout import Fanout, asyncpg_dsn
    from server.realtime.hub import RoomHub
    from server.services.common import system_clock
    from server.services.devices import DeviceService
    from server.startup import open_signer

    database = await _open_database(settings)
    try:
        signer = await open_signer(database, settings)
        # On PostgreSQL the revocation's transaction notifies every replica, which close
        # the devices' streams; on SQLite the server finds them within a second.
        fanout = Fanout(RoomHub(), postgres_dsn=asyncpg_dsn(settings.resolved_database_url()))
        service = DeviceService(database, settings, system_clock, LogWriter(signer), signer, fanout)
        return await service.operator_revoke(target, reason=reason)
    finally:
        await database.dispose()


async def _open_database(settings: Settings) -> Database:
    from server.startup import open_database

    return await open_database(settings, migrate=True)


async def _enroll(settings: Settings, role: Role, name: str) -> EnrollmentTicket:
    # Imported here, like `serve`'s: `parley admin --help` need not load the database stack.
    from server.log.appender import LogWriter
    from server.services.common import system_clock
    from server.services.identity import IdentityService
    from server.startup import open_signer

    database = await _open_database(settings)
    try:
        log = LogWriter(await open_signer(database, settings))
        return await IdentityService(database, settings, system_clock, log).create_enrollment(
            role=role, name=name
        )
    finally:
        await database.dispose()


def _add_operator_commands() -> None:
    from server import cli_admin

    admin_app.command("accounts")(cli_admin.accounts)
    admin_app.add_typer(cli_admin.invites_app, name="invites")
    admin_app.command("disable")(cli_admin.disable)
    admin_app.command("backup")(cli_admin.backup)
    admin_app.add_typer(cli_admin.log_key_app, name="log-key")


_add_operator_commands()
