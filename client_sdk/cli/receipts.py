"""``parley ack``, ``parley receipts`` and ``parley settings``: receipts (docs/design.md §7)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from client_sdk.cli.common import USAGE, fail, failed, open_client, out, print_json, with_client
from client_sdk.cli.render import inline, who
from client_sdk.protocol.errors import ParleyError

if TYPE_CHECKING:
    from client_sdk.client import Acknowledgement

settings_app = typer.Typer(
    help="This profile's settings.", no_args_is_help=False, invoke_without_command=True
)


def acknowledgement_json(ack: Acknowledgement) -> dict[str, object]:
    """A receipt as `parley receipts --json` and `parley read --json` print it."""
    return {
        "seq": ack.seq,
        "account_id": ack.account_id,
        "name": ack.name,
        "receipt_seq": ack.receipt_seq,
        "server_time": _when(ack.server_time),
    }


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def ack(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    seq: Annotated[int, typer.Argument(help="The event this account received and decrypted.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sign and log a receipt: this account received and decrypted event SEQ.

    Instruments, disclosures and documents are acknowledged automatically when
    read; see `parley settings auto-receipts` for every message.
    """
    found = with_client(lambda c: c.acknowledge(room_id, seq))
    if json_output:
        print_json(acknowledgement_json(found))
    else:
        out.line(
            f"acknowledged #{found.seq} (receipt #{found.receipt_seq}, {_when(found.server_time)})"
        )


def receipts(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    seq: Annotated[int | None, typer.Argument(help="Only receipts for this event.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Who acknowledged which event, and when, as the room's log proves it."""
    found = with_client(lambda c: c.receipts(room_id, seq))
    if json_output:
        print_json([acknowledgement_json(a) for a in found])
        return
    if not found:
        out.line("no receipts")
    for a in found:
        out.line(
            f"#{a.seq} received by {who(a.name, account_id=a.account_id)} "
            f"({inline(a.account_id)}) at {_when(a.server_time)} (receipt #{a.receipt_seq})"
        )


@settings_app.callback()
def show_settings(
    context: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print this profile's settings."""
    if context.invoked_subcommand is not None:
        return
    client = open_client()
    shown = {"auto_receipts": client.keystore.state.auto_receipts}
    if json_output:
        print_json(shown)
    else:
        for name, value in shown.items():
            out.print(f"{name}: {'on' if value else 'off'}", highlight=False)


@settings_app.command("auto-receipts")
def auto_receipts(
    value: Annotated[str, typer.Argument(help="on or off.", metavar="on|off")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Acknowledge every message read (on), or only instruments, disclosures and
    documents (off, the default)."""
    if value not in ("on", "off"):
        raise fail(f"auto-receipts is on or off, not {inline(repr(value))}", USAGE)
    client = open_client()
    try:
        client.keystore.set_auto_receipts(value == "on")
    except ParleyError as exc:
        raise failed(exc) from exc
    if json_output:
        print_json({"auto_receipts": value == "on"})
    else:
        out.print(f"auto_receipts: {value}", highlight=False)
