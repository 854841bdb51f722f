"""``parley room ...``: create, add members, show and list rooms."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.table import Table

from client_sdk.cli.common import out, print_json, with_client
from client_sdk.client import Room
from client_sdk.protocol.models import Side

room_app = typer.Typer(help="Rooms and their members.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def room_json(room: Room) -> dict[str, object]:
    """A room as plain JSON."""
    return dataclasses.asdict(room)


@room_app.command("create")
def create(
    title: Annotated[str, typer.Argument(help="The room's title.")],
    require_verified: Annotated[
        bool, typer.Option(help="Members may only encrypt to accounts they verified.")
    ] = False,
    witness: Annotated[
        list[str] | None, typer.Option(help="A witness verifier key (repeat for several).")
    ] = None,
    quorum: Annotated[
        int, typer.Option(help="Cosignatures a checkpoint needs to count as final.")
    ] = 0,
    json_output: JsonOption = False,
) -> None:
    """(Mediators) create a room and print its id.

    The policy is part of the roster you sign: the server cannot change it.
    """
    room = with_client(
        lambda c: c.create_room(
            title, require_verified=require_verified, witnesses=witness or [], witness_quorum=quorum
        )
    )
    if json_output:
        print_json(room_json(room))
    else:
        print(room.room_id)


@room_app.command("add")
def add(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    account_id: Annotated[str, typer.Argument(help="The account to add.")],
    side: Annotated[Side, typer.Option(help="The member's side.")],
    json_output: JsonOption = False,
) -> None:
    """(Mediators) add an account to a room: a new roster version, signed by you."""
    room = with_client(lambda c: c.add_member(room_id, account_id, side))
    if json_output:
        print_json(room_json(room))
    else:
        out.print(f"Roster version {room.roster_version}: {len(room.members)} members.")


@room_app.command("policy")
def policy(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    require_verified: Annotated[
        bool | None,
        typer.Option(
            "--require-verified/--no-require-verified",
            help="Members may only encrypt to accounts they verified.",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None, typer.Option(help="Witness verifier keys (replaces the list).")
    ] = None,
    quorum: Annotated[int | None, typer.Option(help="Cosignatures needed for finality.")] = None,
    json_output: JsonOption = False,
) -> None:
    """(Mediators) change the room's policy: a new roster version, signed by you."""
    room = with_client(
        lambda c: c.set_policy(
            room_id, require_verified=require_verified, witnesses=witness, witness_quorum=quorum
        )
    )
    if json_output:
        print_json(room_json(room))
    else:
        out.print(
            f"Roster version {room.roster_version}: require_verified={room.require_verified}, "
            f"{room.witness_quorum} of {len(room.witnesses)} witnesses for finality."
        )


@room_app.command("show")
def show(
    room_id: Annotated[str, typer.Argument(help="The room.")], json_output: JsonOption = False
) -> None:
    """Show a room, its verified roster and each member's verification state."""
    room = with_client(lambda c: c.room(room_id))
    if json_output:
        print_json(room_json(room))
        return
    out.print(f"[bold]{room.title}[/]  ({room.room_id})", highlight=False)
    out.print(
        f"status {room.status} · mode {room.mode} · roster version {room.roster_version} · "
        f"{room.last_seq} events · you are on side {room.side}",
        highlight=False,
    )
    out.print(
        f"policy: require_verified={room.require_verified} · "
        f"finality needs {room.witness_quorum} of {len(room.witnesses)} witnesses",
        highlight=False,
    )
    table = Table("account", "name", "side", "devices", "verified")
    for m in room.members:
        table.add_row(
            m.account_id,
            m.name,
            m.side.value,
            str(len(m.device_ids)),
            "yes" if m.verified else "no",
        )
    out.print(table)


@room_app.command("list")
def list_rooms(json_output: JsonOption = False) -> None:
    """List your rooms."""
    rooms = with_client(lambda c: c.rooms())
    if json_output:
        print_json(rooms)
        return
    for r in rooms:
        out.print(f"{r['room_id']}  {r['status']:7} {r['title']}", highlight=False)
