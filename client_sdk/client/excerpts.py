"""Making a verifiable excerpt of chosen messages of a room, for an outsider.

A member fetches, for each chosen event, the envelope and unwraps its
content key with its own encryption key (`unwrap_content_key`: that key opens
that message and no other); then the room's rosters from version 1, the
directory entries of the senders and roster signers, one checkpoint of each
log and every inclusion proof against it. `build_excerpt` keeps what the
chosen messages need, and the result is checked with `verify_excerpt`
against the log key this profile pinned before it is handed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from client_sdk.client.http import HttpSession
from client_sdk.client.logs import LogVerifier
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import Envelope, unwrap_content_key
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.excerpt import (
    Excerpt,
    ExcerptMessage,
    LogEntry,
    LoggedStatement,
    SignedLog,
    build_excerpt,
    verify_excerpt,
)
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.note import Checkpoint, verify_checkpoint
from client_sdk.protocol.statements import Roster, SignedStatement, parse_statement
from client_sdk.protocol.wire import parse_answer
from client_sdk.protocol.wire.events import EventKind, EventOut, EventsPage
from client_sdk.protocol.wire.identity import AccountOut, DirectoryEntryOut
from client_sdk.protocol.wire.logs import InclusionOut

PAGE = 200


class Excerpts:
    """Builds excerpts of rooms this device reads."""

    def __init__(self, http: HttpSession, logs: LogVerifier, keystore: Keystore) -> None:
        """Use the client's HTTP session, log verifier (pinned keys) and keystore."""
        self._http = http
        self._logs = logs
        self._keystore = keystore

    async def excerpt(self, room_id: str, seqs: Sequence[int]) -> Excerpt:
        """An excerpt of the messages at `seqs`, verified before it is returned.

        Raises `ProtocolError` for an event that is not a message this device
        can open, `VerificationError` if what the server served does not verify.
        """
        wanted = sorted(set(seqs))
        if not wanted or wanted[0] < 1:
            raise ProtocolError("give the sequence numbers (1 or more) of messages to excerpt")
        events, room_note = await self._events(room_id, wanted[-1])
        room_log, room_checkpoint = await self._signed_log(room_id, room_note)
        messages = []
        for seq in wanted:
            event = events.get(seq)
            if event is None or event.kind is not EventKind.MESSAGE or event.payload is None:
                raise ProtocolError(f"room {room_id}: event #{seq} is not a message")
            envelope = _envelope(event.payload, seq)
            messages.append(
                ExcerptMessage(
                    envelope=envelope,
                    content_key=b64e(self._content_key(envelope, seq)),
                    entry=await self._entry(room_id, room_checkpoint, event.leaf_index, event.leaf),
                )
            )
        newest = max(m.envelope.header.roster_version for m in messages)
        roster_events = [e for _, e in sorted(events.items()) if e.kind is EventKind.ROSTER][
            :newest
        ]
        rosters = [
            LoggedStatement(
                statement=_statement(e.payload),
                entry=await self._entry(room_id, room_checkpoint, e.leaf_index, e.leaf),
            )
            for e in roster_events
        ]
        directory, directory_log = await self._directory(messages, rosters)
        excerpt = build_excerpt(
            room_id=room_id,
            room_log=room_log,
            directory_log=directory_log,
            messages=messages,
            rosters=rosters,
            directory=directory,
        )
        verify_excerpt(excerpt, log_key=room_log.log_key)
        return excerpt

    def _content_key(self, envelope: Envelope, seq: int) -> bytes:
        state = self._keystore.state
        if state.device_id not in envelope.header.recipients:
            raise ProtocolError(f"message #{seq} was not sealed to this device")
        for record in sorted(state.encryption_keys, key=lambda r: r.created_at, reverse=True):
            try:
                return unwrap_content_key(
                    envelope, recipient_device=state.device_id, recipient_key=record.private
                )
            except VerificationError:
                continue
        raise ProtocolError(f"message #{seq}: no encryption key of this device opens it")

    async def _events(self, room_id: str, last: int) -> tuple[dict[int, EventOut], str]:
        """Events 1 to `last` (and the room checkpoint the last page was proven against)."""
        events: dict[int, EventOut] = {}
        cursor, note = 0, ""
        while cursor < last:
            path = f"/v1/rooms/{room_id}/events"
            page = parse_answer(
                EventsPage,
                await self._http.request("GET", path, params={"after": cursor, "limit": PAGE}),
                what=f"GET {path}",
            )
            if not page.events:
                break
            events.update((event.seq, event) for event in page.events)
            cursor, note = page.events[-1].seq, page.checkpoint
        if last not in events:
            raise ProtocolError(f"room {room_id} has no event #{last}")
        return events, note

    async def _signed_log(self, log_id: str, note: str) -> tuple[SignedLog, Checkpoint]:
        identity = await self._logs.identity(log_id)
        checkpoint = verify_checkpoint(note, identity.origin, identity.key)
        return SignedLog(log_key=identity.key.to_text(), checkpoint=note), checkpoint

    async def _entry(self, log_id: str, checkpoint: Checkpoint, index: int, leaf: str) -> LogEntry:
        path = f"/v1/logs/{log_id}/proof/inclusion"
        answer = await self._http.request(
            "GET", path, params={"index": index, "size": checkpoint.size}
        )
        proof = parse_answer(InclusionOut, answer, what=f"GET {path}")
        if proof.index != index or proof.size != checkpoint.size:
            raise VerificationError(f"{path}: a proof for another entry or size")
        return LogEntry(index=index, leaf=leaf, proof=proof.proof)

    async def _directory(
        self, messages: list[ExcerptMessage], rosters: list[LoggedStatement]
    ) -> tuple[list[LoggedStatement], SignedLog]:
        """Registrations and device certificates of senders and roster signers."""
        chain = [parse_statement(r.statement, Roster) for r in rosters]
        devices = {m.envelope.header.sender_device for m in messages}
        devices |= {roster.signer_device for roster in chain}
        accounts = sorted(
            {
                member.account_id
                for roster in chain
                for member in roster.members
                if any(d.device_id in devices for d in member.devices)
            }
        )
        found: list[DirectoryEntryOut] = []
        note, size = "", -1
        for account_id in accounts:
            path = f"/v1/accounts/{account_id}"
            account = parse_answer(
                AccountOut, await self._http.request("GET", path), what=f"GET {path}"
            )
            if account.directory is None:
                raise VerificationError(f"account {account_id}: no directory proof")
            found.extend(account.directory.entries)
            if account.directory.size > size:
                note, size = account.directory.checkpoint, account.directory.size
        directory_log, checkpoint = await self._signed_log(DIRECTORY_LOG_ID, note)
        items = [
            LoggedStatement(
                statement=e.statement,
                entry=await self._entry(DIRECTORY_LOG_ID, checkpoint, e.index, e.leaf),
            )
            for e in found
            if e.kind in ("registration", "device")
        ]
        return items, directory_log


def _envelope(payload: dict[str, Any], seq: int) -> Envelope:
    try:
        return Envelope.model_validate(payload)
    except ValidationError as exc:
        raise VerificationError(f"event #{seq} is not an envelope") from exc


def _statement(payload: dict[str, Any] | None) -> SignedStatement:
    try:
        return SignedStatement.model_validate(payload)
    except ValidationError as exc:
        raise VerificationError("a roster or directory entry is not a signed statement") from exc
