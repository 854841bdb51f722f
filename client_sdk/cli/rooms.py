"""``parley room ...``: create, add members, show and list rooms."""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Annotated

import typer

from client_sdk.cli.common import out, print_json, with_client
from client_sdk.cli.render import inline
from client_sdk.protocol.enums import Action, Mode, Side

if TYPE_CHECKING:
    from client_sdk.client import Room

room_app = typer.Typer(help="Rooms and their members.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class CaucusAction(enum.StrEnum):
    """What `parley room caucus` does."""

    OPEN = "open"
    CLOSE = "close"


class PartySide(enum.StrEnum):
    """The sides a caucus can be with."""

    A = "a"
    B = "b"


def room_json(room: Room) -> dict[str, object]:
    """A room as plain JSON; each member's ``verified`` (directly or via the mediator),
    ``trust`` (``direct``, ``mediator``, ``none``, ``refused``) and ``trust_reason``."""
    shown = dataclasses.asdict(room)
    shown["members"] = [
        {
            **{k: v for k, v in dataclasses.asdict(m).items() if k != "trust"},
            "verified": m.verified,
            "trust": m.trust.trust.value,
            "trust_reason": m.trust.reason,
        }
        for m in room.members
    ]
    return shown


_TRUST = {"direct": "yes", "mediator": "via mediator", "none": "no", "refused": "REFUSED"}
"""How `room show` says a member's trust (`client_sdk.client.vouching.Trust`)."""

VouchOption = Annotated[
    bool,
    typer.Option(
        "--mediator-vouches",
        help="Members who verified the mediator accept the members it verified "
        "(shown as verified via mediator).",
    ),
]


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
    mediator_vouches: VouchOption = False,
    json_output: JsonOption = False,
) -> None:
    """(Mediators) create a room and print its id.

    The policy is part of the roster you sign: the server cannot change it.
    """
    room = with_client(
        lambda c: c.create_room(
            title,
            require_verified=require_verified,
            witnesses=witness or [],
            witness_quorum=quorum,
            mediator_vouches=mediator_vouches,
        )
    )
    if json_output:
        print_json(room_json(room))
    else:
        print(inline(room.room_id))


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
    mediator_vouches: Annotated[
        bool | None,
        typer.Option(
            "--mediator-vouches/--no-mediator-vouches",
            help="Members who verified the mediator accept the members it verified.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """(Mediators) change the room's policy: a new roster version, signed by you."""
    room = with_client(
        lambda c: c.set_policy(
            room_id,
            require_verified=require_verified,
            witnesses=witness,
            witness_quorum=quorum,
            mediator_vouches=mediator_vouches,
        )
    )
    if json_output:
        print_json(room_json(room))
    else:
        out.print(
            f"Roster version {room.roster_version}: require_verified={room.require_verified}, "
            f"mediator_vouches={room.mediator_vouches}, "
            f"{room.witness_quorum} of {len(room.witnesses)} witnesses for finality."
        )


@room_app.command("vouch")
def vouch(
    room_id: Annotated[str, typer.Argument(help="The room.")], json_output: JsonOption = False
) -> None:
    """(Mediators) sign a roster version vouching for every member you verified.

    For rooms whose policy has --mediator-vouches: the roster carries the key
    fingerprint of each member whose safety number you compared (`parley
    verify`), and members who verified you accept those members on that basis.
    """
    room = with_client(lambda c: c.vouch(room_id))
    if json_output:
        print_json(room_json(room))
        return
    out.print(f"Roster version {room.roster_version} vouches for every member you verified.")


@room_app.command("show")
def show(
    room_id: Annotated[str, typer.Argument(help="The room.")], json_output: JsonOption = False
) -> None:
    """Show a room, its verified roster and each member's verification state."""
    room = with_client(lambda c: c.room(room_id))
    if json_output:
        print_json(room_json(room))
        return
    out.line(f"{inline(room.title)}  ({inline(room.room_id)})", style="bold")
    out.line(
        f"status {inline(room.status)} · mode {inline(room.mode)} · "
        f"roster version {room.roster_version} · {room.last_seq} events · "
        f"you are on side {inline(room.side)}"
    )
    caucuses = ", ".join(inline(c) for c in room.caucuses) or "none"
    source = "verified from the log" if room.state_verified else "as the server says"
    out.line(f"channels: plenary; open caucuses: {caucuses} · muted: {len(room.muted)} ({source})")
    out.line(
        f"policy: require_verified={room.require_verified} · "
        f"mediator_vouches={room.mediator_vouches} · "
        f"finality needs {room.witness_quorum} of {len(room.witnesses)} witnesses"
    )
    from rich.table import Table
    from rich.text import Text

    table = Table("account", "name", "side", "devices", "verified", "muted")
    for m in room.members:  # cells as Text: a name is never read as markup
        table.add_row(
            Text(inline(m.account_id)),
            Text(inline(m.name)),
            m.side.value,
            str(len(m.device_ids)),
            _TRUST[m.trust.trust.value],
            "yes" if m.account_id in room.muted else "",
        )
    out.print(table)
    for m in room.members:
        if m.trust.trust.value == "refused":
            out.line(f"refused: {inline(m.trust.reason)}")
    for notice in room.rekey:
        why = "was revoked" if notice.reason == "revoked" else "was linked since"
        out.line(
            f"re-key needed: device {inline(notice.device_id)} of {inline(notice.account_id)} "
            f"{why} (a mediator runs `parley room rekey {inline(room.room_id)}`)"
        )


@room_app.command("rekey")
def rekey(
    room_id: Annotated[str, typer.Argument(help="The room.")], json_output: JsonOption = False
) -> None:
    """(Mediators) re-key the room: a new roster version with each member's devices as the
    directory shows them now (revoked devices out, linked ones in), signed by you."""
    room = with_client(lambda c: c.rekey(room_id))
    if json_output:
        print_json(room_json(room))
    else:
        devices = sum(len(m.device_ids) for m in room.members)
        out.print(f"Roster version {room.roster_version}: {devices} devices.")


@room_app.command("list")
def list_rooms(json_output: JsonOption = False) -> None:
    """List your rooms."""
    rooms = with_client(lambda c: c.rooms())
    if json_output:
        print_json(rooms)
        return
    for r in rooms:
        out.line(f"{inline(r['room_id'])}  {inline(r['status']):7} {inline(r['title'])}")


def _moderate(room_id: str, action: Action, json_output: bool, **params: object) -> None:
    view = with_client(lambda c: c.moderate(room_id, action, **params))  # type: ignore[arg-type]
    if json_output:
        print_json(dataclasses.asdict(view))
        return
    caucuses = ", ".join(inline(c) for c in view.caucuses) or "none"
    out.line(
        f"#{view.seq}: {action.value} done · status {inline(view.status)} · "
        f"mode {inline(view.mode)} · open caucuses: {caucuses}"
    )
    if view.status == "closed":
        out.print("Final checkpoint:")
        for note_line in view.checkpoint.splitlines():  # a signed note: each line made safe
            out.line(inline(note_line))


@room_app.command("mode")
def mode(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    new_mode: Annotated[Mode, typer.Argument(metavar="open|shuttle", help="The new mode.")],
    json_output: JsonOption = False,
) -> None:
    """(Mediators) switch between open and shuttle mode."""
    _moderate(room_id, Action.SET_MODE, json_output, mode=new_mode)


@room_app.command("caucus")
def caucus(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    what: Annotated[CaucusAction, typer.Argument(metavar="open|close")],
    side: Annotated[PartySide, typer.Option(help="The side the caucus is with.")],
    json_output: JsonOption = False,
) -> None:
    """(Mediators) open or close the caucus channel with one side."""
    action = Action.OPEN_CAUCUS if what is CaucusAction.OPEN else Action.CLOSE_CAUCUS
    _moderate(room_id, action, json_output, side=Side(side.value))


@room_app.command("mute")
def mute(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    account_id: Annotated[str, typer.Argument(help="The member to mute.")],
    json_output: JsonOption = False,
) -> None:
    """(Mediators) mute a member: the server refuses their messages."""
    _moderate(room_id, Action.MUTE, json_output, account_id=account_id)


@room_app.command("unmute")
def unmute(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    account_id: Annotated[str, typer.Argument(help="The member to unmute.")],
    json_output: JsonOption = False,
) -> None:
    """(Mediators) unmute a member."""
    _moderate(room_id, Action.UNMUTE, json_output, account_id=account_id)


@room_app.command("remove")
def remove(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    account_id: Annotated[str, typer.Argument(help="The member to remove.")],
    json_output: JsonOption = False,
) -> None:
    """(Mediators) remove a member: a new roster version; later messages are not sealed to them."""
    room = with_client(lambda c: c.remove_member(room_id, account_id))
    if json_output:
        print_json(room_json(room))
    else:
        out.print(f"Roster version {room.roster_version}: {len(room.members)} members.")


@room_app.command("lock")
def lock(
    room_id: Annotated[str, typer.Argument(help="The room.")], json_output: JsonOption = False
) -> None:
    """(Mediators) make the room read-only."""
    _moderate(room_id, Action.LOCK, json_output)


@room_app.command("unlock")
def unlock(
    room_id: Annotated[str, typer.Argument(help="The room.")], json_output: JsonOption = False
) -> None:
    """(Mediators) make a locked room writable again."""
    _moderate(room_id, Action.UNLOCK, json_output)


@room_app.command("close")
def close(
    room_id: Annotated[str, typer.Argument(help="The room.")], json_output: JsonOption = False
) -> None:
    """(Mediators) close the room for good and print its final checkpoint."""
    _moderate(room_id, Action.CLOSE, json_output)


@room_app.command("grant-auditor")
def grant_auditor(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    account_id: Annotated[str, typer.Argument(help="The auditor's account.")],
    json_output: JsonOption = False,
) -> None:
    """(Mediators) let an auditor read and verify the room's log (never its content)."""
    _moderate(room_id, Action.GRANT_AUDITOR, json_output, account_id=account_id)
