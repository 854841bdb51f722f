"""``parley excerpt ROOM_ID SEQ... --out FILE`` (a member) and ``parley excerpt verify
FILE`` (anyone, offline: no server, no profile, no private key).

Both forms share the word ``excerpt``: the group sends its arguments to the
hidden ``make`` command unless the first one names a subcommand (a room id
never is ``verify``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.core import Context  # typer 0.29 vendors click: its Context type
from typer.core import TyperGroup

from client_sdk.cli.common import out, print_json
from client_sdk.cli.dossier import when
from client_sdk.cli.jsonerrors import USAGE, failure, with_client_json
from client_sdk.cli.render import inline, who
from client_sdk.protocol.errors import ProtocolError, VerificationError

if TYPE_CHECKING:
    from client_sdk.protocol.excerpt import VerifiedExcerptMessage


class _ExcerptGroup(TyperGroup):
    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["make", *args]
        return super().parse_args(ctx, args)


excerpt_app = typer.Typer(
    cls=_ExcerptGroup,
    help="Verifiable excerpts: ROOM_ID SEQ... --out FILE to make one, verify FILE to check one.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@excerpt_app.command("make", hidden=True)
def make(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    seqs: Annotated[list[int], typer.Argument(help="Sequence numbers of the messages.")],
    out_file: Annotated[Path, typer.Option("--out", help="Write the excerpt here.")],
    json_output: JsonOption = False,
) -> None:
    """Write a self-contained excerpt of chosen messages, for an outsider to verify."""
    excerpt = with_client_json(lambda c: c.excerpt(room_id, seqs), json_output=json_output)
    try:
        out_file.write_bytes(excerpt.to_json())
    except OSError as exc:
        raise failure(f"cannot write {out_file}: {exc.strerror}", json_output=json_output) from exc
    log_key = excerpt.room_log.log_key
    if json_output:
        print_json({"out": str(out_file), "messages": len(excerpt.messages), "log_key": log_key})
    else:
        out.line(f"wrote {len(excerpt.messages)} messages to {inline(out_file)}")
        out.line(f"log key: {inline(log_key)}")


def _message_json(m: VerifiedExcerptMessage) -> dict[str, Any]:
    return {
        "seq": m.leaf_index + 1,
        "leaf_index": m.leaf_index,
        "message_id": m.message_id,
        "channel": m.channel,
        "sender_name": m.sender_name,
        "sender_account_id": m.sender_account,
        "sender_device": m.sender_device,
        "side": m.side.value,
        "roster_version": m.roster_version,
        "sent_at": when(m.sent_at),
        "logged_at": when(m.logged_at),
        "content": dict(m.content),
    }


def _summary(content: dict[str, Any]) -> str:
    kind = content.get("type")
    if kind in ("text", "relay") and isinstance(content.get("text"), str):
        return str(content["text"])
    if kind == "dossier-commit":
        return (
            f"[dossier commitment {inline(repr(content.get('title')))} "
            f"({inline(content.get('dossier_id'))})]"
        )
    if kind == "dossier-disclosure":
        return (
            f"[dossier disclosure of {inline(content.get('dossier_id'))}, "
            f"phase {inline(content.get('phase'))}]"
        )
    return f"[content of type {inline(repr(kind))}]"


@excerpt_app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="An excerpt file.")],
    log_key: Annotated[
        str | None,
        typer.Option("--log-key", help="The server's log key, obtained out of band."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Verify an excerpt offline and print its messages (exit 0 only if it verifies)."""
    from client_sdk.protocol.excerpt import parse_excerpt, verify_excerpt
    from client_sdk.protocol.excerpt.format import MAX_EXCERPT_BYTES

    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_EXCERPT_BYTES + 1)
    except OSError as exc:
        raise failure(
            f"cannot read {file}: {exc.strerror}", code=USAGE, json_output=json_output
        ) from exc
    try:
        excerpt = parse_excerpt(data)
        messages = verify_excerpt(excerpt, log_key)
    except (ProtocolError, VerificationError) as exc:
        raise failure(f"the excerpt does not verify: {exc}", json_output=json_output) from exc
    if json_output:
        print_json(
            {
                "ok": True,
                "verified": True,
                "room_id": excerpt.room_id,
                "log_key": excerpt.room_log.log_key,
                "log_key_pinned": log_key is not None,
                "messages": [_message_json(m) for m in messages],
            }
        )
        return
    pinned = "the log key given" if log_key else "its own log key (pin one with --log-key)"
    out.line(
        f"verified: {len(messages)} messages of room {inline(excerpt.room_id)}, against {pinned}"
    )
    for m in messages:
        sender = who(m.sender_name, side=m.side.value, account_id=m.sender_account)
        out.emit(
            f"#{m.leaf_index + 1} {when(m.sent_at)} {sender} in {inline(m.channel)}: ",
            _summary(dict(m.content)),
        )
