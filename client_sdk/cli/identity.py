"""Enrollment, identity, fingerprints and tokens."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from client_sdk.cli.common import fail, out, print_json, run, with_client
from client_sdk.cli.jsonerrors import with_client_json
from client_sdk.cli.render import inline
from client_sdk.protocol.enums import Role

if TYPE_CHECKING:
    from client_sdk.client import ContactFingerprint, ParleyClient

auth_app = typer.Typer(help="Bearer tokens for scripting.")
keys_app = typer.Typer(help="This device's encryption keys.")


def enroll(
    server: Annotated[
        list[str],
        typer.Option(
            help="Server URL, e.g. http://127.0.0.1:8000; repeat it for each replica, "
            "the preferred first."
        ),
    ],
    token: Annotated[str, typer.Option(help="The one-time enrollment token.")],
    home: Annotated[
        Path | None, typer.Option(help="Profile directory (default $PARLEY_HOME).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generate keys on this machine, register them, and store them encrypted.

    The passphrase (at least 10 characters) comes from PARLEY_PASSPHRASE, or is
    asked twice.
    """
    from client_sdk.cli.config import check_servers
    from client_sdk.cli.passphrase import new_passphrase
    from client_sdk.client import ParleyClient
    from client_sdk.keystore import default_home

    check_servers(server)
    profile = home or default_home()
    passphrase = new_passphrase()

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
        out.line(
            f"Enrolled {inline(me['name'])} ({inline(me['role'])}) "
            f"as account {inline(me['account_id'])}"
        )
        out.line(f"Keys stored in {inline(profile)}")


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
            out.line(f"{key:12} {inline(value)}")


def fingerprint(
    account_id: Annotated[str, typer.Argument(help="The other account.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the safety number you share with ACCOUNT_ID; compare it out of band.

    If the key the server shows for ACCOUNT_ID is not the one pinned for it, say so,
    name both safety numbers, print no number on stdout, and exit 1.
    """
    found = with_client_json(lambda c: c.fingerprint(account_id), json_output=json_output)
    show_fingerprint(found, json_output=json_output)


def show_fingerprint(found: ContactFingerprint, *, json_output: bool) -> None:
    """Print what `parley fingerprint` found; raise the exit 1 of a substituted key."""
    substituted = substitution_message(found)
    if json_output:
        print_json(fingerprint_json(found, substituted))
    elif substituted is None:
        print(inline(found.safety_number))
    if substituted is not None:
        raise fail(substituted, code="key-substituted", json_output=json_output)


def substitution_message(found: ContactFingerprint) -> str | None:
    """The warning `parley fingerprint` gives when the key shown is not the pinned one."""
    if found.matches_pinned is not False:
        return None
    account = inline(found.account_id)
    return (
        f"the key of account {account} differs from the one pinned: pinned key "
        f"{inline(found.pinned_key_id)} (safety number {inline(found.pinned_safety_number)}), "
        f"the server now shows key {inline(found.key_id)} (safety number "
        f"{inline(found.safety_number)}). Account keys never change: the server may have "
        "substituted it. Compare the new safety number out of band before "
        f"`parley verify {account} NUMBER`"
    )


def fingerprint_json(found: ContactFingerprint, substituted: str | None) -> dict[str, object]:
    """`parley fingerprint --json`: the number, the key ids and whether they match the pin."""
    shown: dict[str, object] = {
        "ok": substituted is None,
        "account_id": found.account_id,
        "safety_number": found.safety_number,
        "key_id": found.key_id,
        "pinned": found.pinned_key_id is not None,
        "matches_pinned": found.matches_pinned,
        "pinned_key_id": found.pinned_key_id,
        "pinned_safety_number": found.pinned_safety_number,
        "verified": found.verified,
    }
    if substituted is not None:
        shown["error"] = substituted
    return shown


def verify(
    account_id: Annotated[str, typer.Argument(help="The other account.")],
    safety_number: Annotated[str, typer.Argument(help="The safety number they read to you.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Mark ACCOUNT_ID verified if SAFETY_NUMBER matches the one you share.

    A number that does not match exits 1 and marks nothing.
    """
    with_client(lambda c: c.verify_contact(account_id, safety_number))
    if json_output:
        print_json({"account_id": account_id, "verified": True})
    else:
        out.line(f"Account {inline(account_id)} is verified.")


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
        out.line(f"{inline(row['account_id'])}  {inline(row['role']):9} {inline(row['name'])}")


def invite(
    name: Annotated[str, typer.Argument(help="The party's display name.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """(Mediators) create a party account and print its one-time enrollment token."""
    ticket = with_client(lambda c: c.invite(name))
    if json_output:
        print_json(ticket)
    else:
        print(inline(ticket["token"]))


@auth_app.command("token")
def auth_token(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a currently valid bearer token (for curl: -H "Authorization: Bearer ...")."""
    token = with_client(lambda c: c.token())
    if json_output:
        print_json({"token": token})
    else:
        print(inline(token))


@keys_app.command("rotate")
def keys_rotate(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Publish a new encryption key now (the SDK also rotates weekly by itself)."""
    key = with_client(lambda c: c.rotate_encryption_key())
    if json_output:
        print_json({"key_id": key})
    else:
        out.line(f"New encryption key {inline(key)}.")


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
        out.line(f"{inline(row['key_id'])}  {state}")
