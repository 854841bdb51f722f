"""Enrollment, identity, fingerprints and tokens."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from client_sdk.cli.common import fail, out, print_json, run, with_client
from client_sdk.protocol.enums import Role

if TYPE_CHECKING:
    from client_sdk.client import ParleyClient

auth_app = typer.Typer(help="Bearer tokens for scripting.")
keys_app = typer.Typer(help="This device's encryption keys.")


def enroll(
    server: Annotated[str, typer.Option(help="Server URL, e.g. http://127.0.0.1:8000")],
    token: Annotated[str, typer.Option(help="The one-time enrollment token.")],
    home: Annotated[
        Path | None, typer.Option(help="Profile directory (default $PARLEY_HOME).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generate keys on this machine, register them, and store them encrypted."""
    from client_sdk.client import ParleyClient
    from client_sdk.keystore import default_home, passphrase_from_env_or_prompt

    profile = home or default_home()
    passphrase = passphrase_from_env_or_prompt("New keystore passphrase: ")
    if not passphrase:
        raise fail("an empty passphrase is not allowed")

    async def work() -> dict[str, str]:
        client = await ParleyClient.enroll(
            server=server, token=token, home=profile, passphrase=passphrase
        )
        async with client:
            return client.whoami()

    me = run(work)
    if json_output:
        print_json(me)
    else:
        out.print(f"Enrolled [bold]{me['name']}[/] ({me['role']}) as account {me['account_id']}")
        out.print(f"Keys stored in {profile}")


def whoami(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show this profile's account, device, role and server."""
    from client_sdk.protocol.fingerprint import account_fingerprint

    async def work(client: ParleyClient) -> dict[str, str]:
        me = client.whoami()
        state = client.keystore.state
        me["fingerprint"] = account_fingerprint(state.account_id, state.account_key.public_bytes())
        return me

    me = with_client(work)
    if json_output:
        print_json(me)
    else:
        for key, value in me.items():
            out.print(f"{key:12} {value}", highlight=False)


def fingerprint(account_id: Annotated[str, typer.Argument(help="The other account.")]) -> None:
    """Print the safety number you share with ACCOUNT_ID; compare it out of band."""
    number = with_client(lambda c: c.safety_number(account_id))
    print(number)


def verify(
    account_id: Annotated[str, typer.Argument(help="The other account.")],
    safety_number: Annotated[str, typer.Argument(help="The safety number they read to you.")],
) -> None:
    """Mark ACCOUNT_ID verified if SAFETY_NUMBER matches the one you share."""
    with_client(lambda c: c.verify_contact(account_id, safety_number))
    out.print(f"Account {account_id} is verified.")


def accounts(
    role: Annotated[Role | None, typer.Option(help="Only this role.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List enrolled accounts."""
    rows = with_client(lambda c: c.accounts(role))
    if json_output:
        print_json(rows)
        return
    for row in rows:
        out.print(f"{row['account_id']}  {row['role']:9} {row['name']}", highlight=False)


def invite(
    name: Annotated[str, typer.Argument(help="The party's display name.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """(Mediators) create a party account and print its one-time enrollment token."""
    ticket = with_client(lambda c: c.invite(name))
    if json_output:
        print_json(ticket)
    else:
        print(ticket["token"])


@auth_app.command("token")
def auth_token() -> None:
    """Print a currently valid bearer token (for curl: -H "Authorization: Bearer ...")."""
    print(with_client(lambda c: c.token()))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Publish a new encryption key now (the SDK also rotates weekly by itself)."""
    key = with_client(lambda c: c.rotate_encryption_key())
    out.print(f"New encryption key {key}.")


@keys_app.command("list")
def keys_list(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """This device's encryption keys: current, and retired ones not yet purged."""

    async def work(client: ParleyClient) -> list[dict[str, object]]:
        return [
            {
                "key_id": r.key_id,
                "created_at": r.created_at,
                "not_after": r.not_after,
                "retired_at": r.retired_at,
                "published": r.published,
            }
            for r in client.keystore.state.encryption_keys
        ]

    rows = with_client(work)
    if json_output:
        print_json(rows)
        return
    for row in rows:
        state = (
            "unpublished"
            if not row["published"]
            else "current"
            if row["retired_at"] is None
            else "retired"
        )
        out.print(f"{row['key_id']}  {state}", highlight=False)
