"""The operator's everyday commands, under ``parley admin``: the log key, listings,
invitations, disabling an account, backups. Like `server.cli`'s, they work on the
database directly, and import the server stack only when they run.

Exit codes: 0 done, 1 refused (no such account, DEST not empty, a key file that
exists), 2 a setting, the database or the log key (one line, never a traceback).
Listings under ``--json`` are one JSON array on stdout, with the keys the README's
Operators section documents.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from server.cli_common import fail as _fail
from server.cli_common import settings as _settings
from server.cli_common import startup_errors as _startup_errors

if TYPE_CHECKING:
    from server.services.operator import OperatorService

T = TypeVar("T")

log_key_app = typer.Typer(help="The log key that signs every checkpoint.")
invites_app = typer.Typer(
    help="Pending invitations (enrollment tokens not yet used; never the tokens).",
    invoke_without_command=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _safe(text: str) -> str:
    """A name as one printable line (names come from mediators' invitations too)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _with_operator(work: Callable[[OperatorService], Awaitable[T]], json_output: bool) -> T:
    """Run `work` on the configured database; refusals exit 1, start-up errors 2."""
    from server.errors import DomainError

    async def run() -> T:
        from server.cli import _open_database
        from server.log.appender import LogWriter
        from server.realtime.fanout import Fanout, asyncpg_dsn
        from server.realtime.hub import RoomHub
        from server.services.common import system_clock
        from server.services.devices import DeviceService
        from server.services.operator import OperatorService
        from server.startup import open_signer

        database = await _open_database(settings)
        try:
            signer = await open_signer(database, settings)
            fanout = Fanout(RoomHub(), postgres_dsn=asyncpg_dsn(settings.resolved_database_url()))
            devices = DeviceService(
                database, settings, system_clock, LogWriter(signer), signer, fanout
            )
            return await work(OperatorService(database, system_clock, devices))
        finally:
            await database.dispose()

    settings = _settings()
    try:
        with _startup_errors(json_output):
            return asyncio.run(run())
    except DomainError as exc:
        _fail(exc.message, json_output)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False))


@log_key_app.command("generate")
def log_key_generate(
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write it; default DATA_DIR/log-signing-key."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Write a new log key (mode 0600), refusing to overwrite one, and print its verifier
    key. Give the same key to every replica (the file, or its text as
    PARLEY_LOG_SIGNING_KEY) before any of them starts."""
    from client_sdk.protocol.leaf import directory_origin
    from server.log.signer import KEY_FILE, CheckpointSigner, write_new_key

    settings = _settings()
    path = out or settings.data_dir / KEY_FILE
    if not write_new_key(path):
        _fail(f"{path} exists: a log key is never overwritten (move it away first)", json_output)
    signer = CheckpointSigner.load(signer_key=path.read_text().strip(), data_dir=path.parent)
    vkey = signer.vkey(directory_origin(settings.log_origin_host))
    if json_output:
        _print_json({"path": str(path), "vkey": vkey})
    else:
        typer.echo(f"Wrote {path}; the directory log's key, as clients pin it: {vkey}")


def accounts(json_output: JsonOption = False) -> None:
    """List every account: pending (invited), active, revoked (disabled) and cancelled."""

    async def work(operator: OperatorService) -> list[dict[str, Any]]:
        return [
            {
                "account_id": listed.account.id,
                "role": listed.account.role,
                "name": listed.account.name,
                "status": listed.account.status,
                "devices": listed.devices,
                "invited_by": listed.invited_by,
                "created_at": listed.account.created_at,
            }
            for listed in await operator.accounts()
        ]

    rows = _with_operator(work, json_output)
    if json_output:
        _print_json(rows)
        return
    if not rows:
        typer.echo("No accounts.")
    for row in rows:
        typer.echo(
            f"{row['account_id']}  {row['role']:<8}  {row['status']:<9}  "
            f"{row['devices']} device(s)  {_safe(row['name'])}"
        )


@invites_app.callback()
def invites(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List pending invitations: the account each would enroll, who invited it, when its
    token expires (the token itself is stored only as a hash)."""
    if ctx.invoked_subcommand is not None:
        return

    async def work(operator: OperatorService) -> list[dict[str, Any]]:
        return [
            {
                "account_id": invite.account.id,
                "role": invite.account.role,
                "name": invite.account.name,
                "invited_by": invite.invited_by,
                "created_at": invite.account.created_at,
                "expires_at": invite.expires_at,
            }
            for invite in await operator.invites()
        ]

    rows = _with_operator(work, json_output)
    if json_output:
        _print_json(rows)
        return
    if not rows:
        typer.echo("No pending invitations.")
    for row in rows:
        expires = _utc(row["expires_at"])
        typer.echo(
            f"{row['account_id']}  {row['role']:<8}  expires {expires}  {_safe(row['name'])}"
        )


def _utc(ms: int) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@invites_app.command("revoke")
def invites_revoke(
    account_id: Annotated[str, typer.Argument(help="The invitation's account id (`invites`).")],
    json_output: JsonOption = False,
) -> None:
    """Revoke a pending invitation: its token stops working and the account is cancelled."""

    async def work(operator: OperatorService) -> None:
        await operator.revoke_invite(account_id)

    _with_operator(work, json_output)
    if json_output:
        _print_json({"account_id": account_id, "status": "cancelled"})
    else:
        typer.echo(f"Revoked the invitation of account {account_id}.")


def disable(
    account_id: Annotated[str, typer.Argument(help="The account (`parley admin accounts`).")],
    reason: Annotated[str, typer.Option(help="Why (logged with the revocation).")] = "",
    json_output: JsonOption = False,
) -> None:
    """Disable an account for good: no login, no enrollment, no new device. An enrolled
    account is revoked whole in the directory log (signed by the log key, seen by every
    client); a pending one's invitation is revoked."""

    async def work(operator: OperatorService) -> dict[str, Any]:
        done = await operator.disable(account_id, reason=reason)
        revocation = done.revocation
        return {
            "account_id": done.account_id,
            "status": done.status,
            "revoked_devices": [] if revocation is None else revocation.device_ids,
            "leaf_index": None if revocation is None else revocation.appended.index,
        }

    summary = _with_operator(work, json_output)
    if json_output:
        _print_json(summary)
    elif summary["leaf_index"] is None:
        typer.echo(f"Cancelled account {account_id} (it had not enrolled).")
    else:
        typer.echo(
            f"Disabled account {account_id}: revoked {len(summary['revoked_devices'])} "
            f"device(s) (directory leaf {summary['leaf_index']})."
        )


def backup(
    dest: Annotated[Path, typer.Argument(help="A new (or empty) directory.")],
    json_output: JsonOption = False,
) -> None:
    """Copy the database (consistently, while the server runs), the log key and the
    document blobs into DEST. SQLite: DEST is then a data directory to restore from;
    PostgreSQL: DEST/parley.pgdump is for pg_restore."""
    from server.backup import BackupRefused
    from server.backup import backup as run_backup

    settings = _settings()
    try:
        with _startup_errors(json_output):
            done = run_backup(settings, dest)
    except BackupRefused as exc:
        _fail(str(exc), json_output)
    if json_output:
        _print_json(
            {
                "dest": str(done.dest),
                "database": done.database,
                "database_file": str(done.database_file),
                "log_key": done.log_key,
                "blobs": done.blobs,
            }
        )
    else:
        typer.echo(
            f"Backed up the {done.database} database to {done.database_file}, the log key "
            f"and {done.blobs} blob(s) into {done.dest}."
        )
