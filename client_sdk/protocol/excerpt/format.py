"""Verifiable excerpts: chosen messages of a room, provable to an outsider (issue 8).

An excerpt is one self-contained JSON document. For each chosen message it
holds the envelope (header, ciphertext, key wraps, signature), the message's
content key, and the log entry (leaf and inclusion proof). Around them:

- the room log's verifier key and a checkpoint of it (C2SP signed note) that
  every room entry's proof leads to;
- the room's roster chain from version 1 to the newest version a message was
  sealed to, each version with its entry: it proves the sender's side and
  the channel's audience;
- the directory log's verifier key and a checkpoint, with the registrations
  and device certificates of every sender and every roster signer, each with
  its entry: they prove that each device key is the one the directory holds.

`verify_excerpt` checks all of it with no server and no member's private key
(`verify`). Revealing a content key reveals that message only: each
message has its own fresh key (docs/design.md §5), and the header commits
to it. What an excerpt does reveal beyond the chosen plaintexts is metadata:
the chosen events' headers (channel, sender device, recipient devices,
times, roster version), their key wraps (opaque ciphertexts, one per
recipient device), the log size and the sibling hashes of the proofs, the
rosters included (members, names, sides, keys, policy) and the directory
entries included (account names, roles, keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal

from pydantic import Field, ValidationError

from client_sdk.protocol.encoding import b64e, parse_json_object
from client_sdk.protocol.envelope import Envelope
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.models import B64, Ident, Int, WireModel
from client_sdk.protocol.statements import SignedStatement

EXCERPT_FORMAT: Final = "parley-excerpt"
EXCERPT_VERSION: Final = 1
MAX_EXCERPT_BYTES = 64 * 1024 * 1024
MAX_MESSAGES = 1000
MAX_PROOF_HASHES = 64


class LogEntry(WireModel):
    """A log leaf at `index` and its inclusion proof against the excerpt's checkpoint."""

    index: Int = Field(ge=0)
    leaf: B64
    proof: list[B64] = Field(max_length=MAX_PROOF_HASHES)


class SignedLog(WireModel):
    """A log's C2SP verifier key (named by the log's origin) and a signed checkpoint."""

    log_key: str = Field(min_length=1, max_length=500)
    checkpoint: str = Field(min_length=1, max_length=64 * 1024)


class LoggedStatement(WireModel):
    """A signed statement (roster, registration, device certificate) and its log entry."""

    statement: SignedStatement
    entry: LogEntry


class ExcerptMessage(WireModel):
    """One chosen message: its envelope, its content key and its room log entry."""

    envelope: Envelope
    content_key: B64
    entry: LogEntry


class Excerpt(WireModel):
    """A self-contained, verifiable excerpt of a room's record."""

    format: Literal["parley-excerpt"] = EXCERPT_FORMAT
    v: Int = Field(default=EXCERPT_VERSION, ge=EXCERPT_VERSION, le=EXCERPT_VERSION)
    room_id: Ident
    room_log: SignedLog
    directory_log: SignedLog
    rosters: list[LoggedStatement] = Field(min_length=1, max_length=10_000)
    directory: list[LoggedStatement] = Field(min_length=1, max_length=10_000)
    messages: list[ExcerptMessage] = Field(min_length=1, max_length=MAX_MESSAGES)

    def to_json(self) -> bytes:
        """The excerpt file's bytes."""
        return self.model_dump_json().encode()


def parse_excerpt(data: bytes) -> Excerpt:
    """Parse an excerpt file strictly; raise `ProtocolError` on any malformation."""
    if len(data) > MAX_EXCERPT_BYTES:
        raise ProtocolError(f"an excerpt is at most {MAX_EXCERPT_BYTES} bytes")
    try:
        return Excerpt.model_validate(parse_json_object(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ProtocolError(f"malformed excerpt: {where}: {error['msg']}") from exc
    except RecursionError as exc:
        raise ProtocolError("malformed excerpt: nested too deeply") from exc


def log_entry(index: int, leaf: bytes, proof: Iterable[bytes]) -> LogEntry:
    """A `LogEntry` from raw leaf bytes and proof hashes."""
    return LogEntry(index=index, leaf=b64e(leaf), proof=[b64e(p) for p in proof])


def _body(item: LoggedStatement) -> dict[str, Any]:
    return item.statement.body


def build_excerpt(
    *,
    room_id: str,
    room_log: SignedLog,
    directory_log: SignedLog,
    messages: Sequence[ExcerptMessage],
    rosters: Sequence[LoggedStatement],
    directory: Sequence[LoggedStatement],
) -> Excerpt:
    """Assemble an excerpt from parts already fetched (and proven against the two
    checkpoints), keeping only what the chosen messages need: roster versions 1
    to the newest one used, and the directory entries of the senders and of
    the roster signers. Checks nothing cryptographic: `verify_excerpt` does.
    """
    if not messages:
        raise ProtocolError("an excerpt holds at least one message")
    chosen = sorted({m.entry.index: m for m in messages}.values(), key=lambda m: m.entry.index)
    newest = max(m.envelope.header.roster_version for m in chosen)
    by_version = {v: r for r in rosters if isinstance(v := _body(r).get("version"), int)}
    missing = [v for v in range(1, newest + 1) if v not in by_version]
    if missing:
        raise ProtocolError(f"roster version {missing[0]} is needed and was not given")
    chain = [by_version[v] for v in range(1, newest + 1)]
    devices = {m.envelope.header.sender_device for m in chosen}
    devices |= {str(_body(r).get("signer_device")) for r in chain}
    accounts = {
        str(member.get("account_id"))
        for r in chain
        for member in _body(r).get("members", [])
        if isinstance(member, dict)
        and any(
            isinstance(d, dict) and d.get("device_id") in devices for d in member.get("devices", [])
        )
    }
    needed = [
        item
        for item in directory
        if _body(item).get("account_id") in accounts
        and (
            _body(item).get("type") == "registration"
            or (
                _body(item).get("type") == "device-cert" and _body(item).get("device_id") in devices
            )
        )
    ]
    unique = sorted(
        {item.entry.index: item for item in needed}.values(), key=lambda i: i.entry.index
    )
    return Excerpt(
        room_id=room_id,
        room_log=room_log,
        directory_log=directory_log,
        rosters=chain,
        directory=unique,
        messages=chosen,
    )
