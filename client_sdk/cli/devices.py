"""``parley device ...``: this account's devices: list, revoke, add (on the new device)
and approve (on a device the account already has)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from client_sdk.cli.common import out, print_json
from client_sdk.cli.jsonerrors import failure, run_json, with_client_json
from client_sdk.cli.render import inline

if TYPE_CHECKING:
    from client_sdk.client import ParleyClient

device_app = typer.Typer(help="This account's devices: list, revoke, add, approve.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@device_app.command("list")
def list_devices(json_output: JsonOption = False) -> None:
    """Every device of this account, as the directory log shows it: in use or revoked."""
    import dataclasses

    views = with_client_json(lambda c: c.devices.all(), json_output=json_output)
    if json_output:
        print_json([dataclasses.asdict(v) for v in views])
        return
    for view in views:
        mark = " (this device)" if view.this_device else ""
        if view.status == "revoked":
            why = f": {inline(view.reason)}" if view.reason else ""
            status = f"revoked by the {inline(view.revoked_by)}{why}"
        else:
            status = "active"
        out.line(f"{inline(view.device_id)}  {status}{mark}")


@device_app.command("revoke")
def revoke(
    device_id: Annotated[str, typer.Argument(help="The device to revoke (see `device list`).")],
    reason: Annotated[str, typer.Option(help="Why (logged with the revocation).")] = "",
    json_output: JsonOption = False,
) -> None:
    """Revoke a device of this account, signed by the account key: its tokens are refused
    at once, its streams closed, and rooms that list it are flagged for re-keying."""

    async def work(client: ParleyClient) -> dict[str, object]:
        logged = await client.devices.revoke(device_id, reason=reason)
        return {"device_id": device_id, "leaf_index": logged.leaf_index}

    done = with_client_json(work, json_output=json_output)
    if json_output:
        print_json(done)
    else:
        out.line(
            f"Revoked {inline(device_id)} (directory leaf {done['leaf_index']}). Mediators of "
            "its rooms must re-key them (`parley room rekey ROOM`)."
        )


@device_app.command("add")
def add(
    server: Annotated[
        list[str],
        typer.Option(
            help="Server URL, e.g. http://127.0.0.1:8000; repeat it for each replica, "
            "the preferred first."
        ),
    ],
    account: Annotated[str, typer.Option(help="The account this new device joins.")],
    home: Annotated[
        Path | None, typer.Option(help="Profile directory for this device (default $PARLEY_HOME).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """(On the new device) make keys here, ask to join ACCOUNT, print the code, and wait
    until a device of the account runs `parley device approve CODE`."""
    from client_sdk.cli.passphrase import new_passphrase
    from client_sdk.client import ParleyClient
    from client_sdk.keystore import Keystore, default_home

    profile = home or default_home()
    if Keystore.exists(profile):
        raise failure(
            f"{profile} already holds a keystore; use another PARLEY_HOME", json_output=json_output
        )
    passphrase = new_passphrase()

    async def work() -> dict[str, str]:
        pending = await ParleyClient.request_link(server=server, account_id=account)
        if json_output:
            print_json({"link_id": pending.link_id, "code": pending.code, "status": "pending"})
        else:
            code = inline(pending.code)
            print(
                f"Code: {code}\nOn a device of this account run: "
                f"parley device approve {code}\nWaiting for approval...",
                flush=True,
            )
        client = await ParleyClient.complete_link(pending, home=profile, passphrase=passphrase)
        async with client:
            return client.whoami()

    me = run_json(work, json_output=json_output)
    if json_output:
        print_json({**me, "status": "linked"})
    else:
        out.line(
            f"Linked: device {inline(me['device_id'])} of {inline(me['name'])} "
            f"({inline(me['account_id'])}); keys stored in {inline(profile)}. "
            "Mediators re-key your rooms to include it."
        )
    sys.stdout.flush()


@device_app.command("approve")
def approve(
    code: Annotated[str, typer.Argument(help="The code the new device shows.")],
    json_output: JsonOption = False,
) -> None:
    """(On a device of the account) approve the new device that shows CODE: its keys are
    certified with the account key, and the account key sealed to it."""
    view = with_client_json(lambda c: c.devices.approve(code), json_output=json_output)
    if json_output:
        print_json({"device_id": view.device_id, "code": view.code, "link_id": view.link_id})
    else:
        out.line(f"Approved device {inline(view.device_id)} (code {inline(view.code)}).")
