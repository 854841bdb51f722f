"""``parley send`` and ``parley read``."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from client_sdk.cli import agreements, documents, dossier
from client_sdk.cli.common import USAGE, err, fail, out, print_json, with_client
from client_sdk.cli.receipts import acknowledgement_json
from client_sdk.cli.render import inline, label, who
from client_sdk.protocol.errors import ProtocolError

if TYPE_CHECKING:
    from rich.text import Text

    from client_sdk.client import Message, OfferEvent, ParleyClient
    from client_sdk.client.dossier_models import ReceivedDisclosure, SeenCommit
    from client_sdk.protocol.documents import DocumentContent

# The SDK's modules are imported in the functions that use them, so `parley send
# --help` stays cheap (`client_sdk.cli.lazy`).


def send(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    text: Annotated[
        str | None, typer.Argument(help="The message, or - to read it from stdin.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Send this file as an encrypted document instead."),
    ] = None,
    channel: Annotated[str, typer.Option(help="The channel.")] = "plenary",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Encrypt and send a message, or with --file a document, to the room.

    A document is sealed in chunks and uploaded; if an earlier send of the same
    unchanged file was interrupted, this one resumes it.
    """
    if (text is None) == (file is None):
        raise fail("give either a message or --file PATH", USAGE)
    if file is not None:
        documents.send_file(room_id, file, channel, json_output)
        return
    assert text is not None
    body = sys.stdin.read() if text == "-" else text
    receipt = with_client(lambda c: c.send(room_id, body, channel=channel))
    if json_output:
        print_json(
            {"seq": receipt.seq, "leaf_index": receipt.leaf_index, "message_id": receipt.message_id}
        )
    else:
        out.print(f"sent as #{receipt.seq}")


def message_json(message: Message) -> dict[str, object]:
    """A message as the JSON line `parley read --json` prints."""
    return {
        "seq": message.seq,
        "room_id": message.room_id,
        "channel": message.channel,
        "message_id": message.message_id,
        "sender_account_id": message.sender_account_id,
        "sender_name": message.sender_name,
        "sender_device": message.sender_device,
        "sent_at": datetime.fromtimestamp(message.sent_at / 1000, UTC).isoformat(),
        "server_time": datetime.fromtimestamp(message.server_time / 1000, UTC).isoformat(),
        "leaf_index": message.leaf_index,
        "text": message.text,
        "relay": None if message.relay is None else dataclasses.asdict(message.relay),
        "document": _document_json(message),
        "agreement": agreements.read_json(message),
        "refused": None
        if message.refused is None
        else {"kind": message.refused.kind, "reason": str(message.refused)},
    }


def _document(message: Message) -> DocumentContent | None:
    from client_sdk.protocol.content import content_type, parse_content
    from client_sdk.protocol.documents import DocumentContent

    if content_type(message.content) != "document":
        return None
    try:
        parsed = parse_content(message.content)
    except ProtocolError:
        return None
    return parsed if isinstance(parsed, DocumentContent) else None


def _document_json(message: Message) -> dict[str, object] | None:
    from client_sdk.protocol.content import content_type

    document = _document(message)
    if document is None:
        return None if content_type(message.content) != "document" else {"malformed": True}
    return documents.document_json(document)


def read(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    after: Annotated[int, typer.Option(help="Only events after this sequence number.")] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming new messages.")
    ] = False,
    channel: Annotated[
        str | None,
        typer.Option(help="Only this channel: main (the plenary), caucus-a or caucus-b."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only events from this age (90m, 2h, 1d) or ISO date or time on "
            "(2026-12-01, 2026-12-01T09:30, local time)."
        ),
    ] = None,
    grep: Annotated[
        str | None,
        typer.Option(
            help="Only events whose text or sender matches this regular expression (case ignored)."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per message.")
    ] = False,
) -> None:
    """Print the room's messages, each verified and decrypted.

    Each line starts with the event's number, its time (with the date when it is
    not today), its channel and its sender's side or role, account tag and name; a
    mediator's change to the room (a mode, a caucus, a mute, a member added or
    removed, the policy) is a line of its own, marked with *.
    """
    from client_sdk.cli import timeline
    from client_sdk.client import Message

    try:
        since_ms = None if since is None else timeline.parse_since(since)
        pattern = None if grep is None else timeline.compile_grep(grep)
    except ValueError as exc:
        raise fail(str(exc), USAGE) from exc
    only = timeline.channel_filter(channel)
    stamps = timeline.Stamps()

    def wanted(channel_of: str, at: int, *texts: str) -> bool:
        return (
            (only is None or channel_of in (only, timeline.ROOM))
            and (since_ms is None or at >= since_ms)
            and (pattern is None or any(pattern.search(text) for text in texts))
        )

    async def work(client: ParleyClient) -> None:
        dossiers = client.dossiers.tracker(room_id)
        held: list[dict[str, object]] = []
        async for event in client.events(room_id, after=after, follow=follow):
            if not isinstance(event, Message):
                shown_channel = timeline.change_channel(event)
                text = timeline.change_text(event)
                if not json_output and wanted(shown_channel, event.server_time, text):
                    out.emit(timeline.change_line(event, stamps(event.server_time)), "")
                continue
            message = event
            seen = await dossiers.see(message)  # every message, shown or not
            offer = client.offers.event(message)
            body = _body(message, seen, offer)
            if not wanted(message.channel, message.sent_at, body, message.sender_name):
                continue
            if message.refused is not None:  # reported, never opened; the room reads on
                err.emit(f"warning: #{message.seq}: {inline(str(message.refused))}", "")
            if json_output:
                shown = message_json(message)
                if seen is not None:
                    shown["dossier"] = dossier.read_json(seen)
                if offer is not None:
                    shown["offer"] = offer_json(offer)
                if follow:  # the receipts read so far; a plain read prints them all below
                    shown["receipts"] = receipt_list(client, room_id, message.seq)
                    print_json(shown)
                else:
                    held.append(shown)
            else:
                out.emit(message_header(message, stamps(message.sent_at)), body)
        for shown in held:
            seq = shown["seq"]
            assert isinstance(seq, int)
            print_json({**shown, "receipts": receipt_list(client, room_id, seq)})

    with_client(work)


def message_header(message: Message, stamp: str | None = None) -> Text:
    """``#12 09:14:03 plenary [party a · 3f9c2a] Alice: ``: what `parley read` puts
    before a message. The sender's side (from the signed roster) and account tag come
    before the name the sender chose; a relay says whose message it passes on.
    `stamp` is the time as shown (default: the time of day, UTC)."""
    from rich.text import Text

    when = stamp or datetime.fromtimestamp(message.sent_at / 1000, UTC).strftime("%H:%M:%S")
    header = Text.assemble(
        (f"#{message.seq} {when} {inline(message.channel)} ", "dim"),
        label(side=message.sender_side, account_id=message.sender_account_id) + " ",
        (inline(message.sender_name), "bold"),
        ": ",
    )
    relay = message.relay
    if relay is not None:
        note = "edited" if relay.edited else "unedited"
        checked = ", checked" if relay.checked else ""
        original = who(relay.original_sender_name, account_id=relay.original_sender_account_id)
        header.append(
            f"(relaying #{relay.original_seq} from {original} in "
            f"{inline(relay.original_channel)}, {note}{checked}) ",
            style="italic",
        )
    return header


def receipt_list(client: ParleyClient, room_id: str, seq: int) -> list[dict[str, object]]:
    """The receipts for event `seq` this client has read, as JSON."""
    return [acknowledgement_json(a) for a in client.receipts_seen(room_id, seq)]


def offer_json(offer: OfferEvent) -> dict[str, object]:
    """A round act as `parley read --json` shows it (an opening that does not open its
    commitment has no value, only `refused`)."""
    return {
        "act": offer.act,
        "round_id": offer.round_id,
        "side": offer.side,
        "value": offer.value,
        "note": offer.note,
        "refused": offer.refused,
    }


def _body(
    message: Message, seen: SeenCommit | ReceivedDisclosure | None, offer: OfferEvent | None
) -> str:
    from client_sdk.protocol.content import content_type

    if message.refused is not None:
        return f"[refused: {inline(str(message.refused))}]"
    if seen is not None:
        return dossier.read_line(seen)
    if offer is not None:
        return f"[{inline(offer.text)}]"
    if message.instrument is not None:
        return agreements.read_line(message) or f"[{inline(message.instrument.act)}]"
    kind = content_type(message.content)
    if kind == "document":
        document = _document(message)
        if document is None:
            return "[a malformed document]"
        return (
            f"[document] {inline(document.name)} ({documents.human_size(document.size)}, "
            f"{inline(document.media_type)}) - parley download {message.room_id} {message.seq} "
            f"-o {inline(shlex.quote(document.name))}"
        )
    if kind in ("text", "relay", "expired"):
        return message.text  # running text: `emit` shows it safely, indented
    return f"[content of type {inline(repr(kind))}]"


def relay(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    seq: Annotated[int, typer.Argument(help="The message to pass on.")],
    to: Annotated[str, typer.Option(help="The channel to pass it to.")],
    edit: Annotated[str | None, typer.Option(help="Pass on this text instead.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """(Mediators) pass a message on to another channel, re-encrypted and signed by you.

    The relay carries the hash of the original, so anyone who can read both can
    check what was passed on and whether it was edited.
    """
    receipt = with_client(lambda c: c.relay(room_id, seq, to=to, edit=edit))
    if json_output:
        print_json(
            {"seq": receipt.seq, "leaf_index": receipt.leaf_index, "message_id": receipt.message_id}
        )
    else:
        out.line(f"relayed #{seq} to {inline(to)} as #{receipt.seq}")
