"""Reading a room: every event checked (log, rosters, moderation, rules, signature)
before a message is decrypted and handed over, over HTTP pages and then the stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from client_sdk.client import opening
from client_sdk.client.chains import RoomChain, RoomChains
from client_sdk.client.changes import moderation_change, roster_change
from client_sdk.client.helpers import b64, signed_statement
from client_sdk.client.http import HttpSession, patiently
from client_sdk.client.keys import KeyRotation
from client_sdk.client.logs import LogVerifier
from client_sdk.client.models import Message, RoomChange
from client_sdk.client.stream import EventStream
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64d, b64e, sha256
from client_sdk.protocol.envelope import Envelope, check_envelope
from client_sdk.protocol.errors import (
    AlteredError,
    DroppedEventError,
    InvalidRequestError,
    ProtocolError,
    ReorderedError,
    StaleRosterError,
    VerificationError,
    WithheldError,
)
from client_sdk.protocol.instruments.base import Act
from client_sdk.protocol.instruments.receipts import ReceiptAct
from client_sdk.protocol.mediation import PLENARY, channel_devices, channel_sides
from client_sdk.protocol.merkle import leaf_hash
from client_sdk.protocol.note import Checkpoint
from client_sdk.protocol.statements import RosterMember, SignedStatement
from client_sdk.protocol.wire.events import EventKind, EventOut, EventsPage
from client_sdk.protocol.wire.stream import BatchFrame

PAGE = 200
OnBatch = Callable[[str, list[Message]], Awaitable[None]]
"""Told of each batch of messages opened, before they are handed over (receipts)."""


class Reader:
    """Verified reading of rooms' events."""

    def __init__(
        self,
        http: HttpSession,
        logs: LogVerifier,
        chains: RoomChains,
        keys: KeyRotation,
        keystore: Keystore,
        *,
        stream: Callable[[str], EventStream] | None = None,
        on_batch: OnBatch | None = None,
    ) -> None:
        """`stream` makes a room's event stream (default: the server's WebSocket);
        `on_batch` is told of each batch of messages opened (see `OnBatch`)."""
        self._on_batch = on_batch
        self._http = http
        self._logs = logs
        self._chains = chains
        self._keys = keys
        self._keystore = keystore
        self._stream = stream or (
            lambda room_id: EventStream(http, room_id, since=lambda: logs.since(room_id))
        )

    async def replay(self, room_id: str) -> None:
        """Check every event of the room not replayed yet, without decrypting messages."""
        chain = self._chains.chain(room_id)
        cursor = chain.position if chain.state_known else 0
        async for _ in self._pages(room_id, cursor, decrypt=False):
            pass

    async def messages(
        self, room_id: str, *, after: int = 0, follow: bool = False
    ) -> AsyncIterator[Message]:
        """Verified, decrypted messages after sequence number `after` (see `events`)."""
        async for event in self.events(room_id, after=after, follow=follow):
            if isinstance(event, Message):
                yield event

    async def events(
        self, room_id: str, *, after: int = 0, follow: bool = False
    ) -> AsyncIterator[Message | RoomChange]:
        """Verified, decrypted messages after sequence number `after`, and between them
        the mediators' changes to the room (moderation acts, roster versions).

        Every event is checked before it is handed over: its leaf is in a
        checkpoint signed by the pinned log key and consistent with every
        checkpoint verified before; then the roster chain, the recipients, the
        signature and the sender's view of the log. With `follow`, keep
        streaming over the WebSocket, reconnecting and resuming from the last
        event seen: no gap and no duplicate; and what the follower asks the
        server while it reads (a page, a consistency proof, a roster, an account)
        waits for a server that went away, as the stream itself does, instead of
        ending the follow (a half-checked batch cannot be resumed).
        """
        await self._keys.maintain()
        cursor = after
        async for messages, end in self._pages(room_id, after, patient=follow):
            cursor = end
            with _waiting(follow):
                await self._opened(room_id, _only_messages(messages))
            for message in messages:
                yield message
        if not follow:
            return
        async for batch in self._stream(room_id).batches(after=cursor):
            with patiently():  # never across a yield: the caller's requests stay its own
                messages, cursor = await self._process_batch(room_id, batch, cursor)
                await self._opened(room_id, _only_messages(messages))
            for message in messages:
                yield message

    async def _opened(self, room_id: str, messages: list[Message]) -> None:
        if self._on_batch is not None and messages:
            await self._on_batch(room_id, messages)

    async def message_at(self, room_id: str, seq: int) -> Message:
        """Message `seq` of the room, if this device can read it."""
        async for message in self.messages(room_id, after=0):
            if message.seq == seq:
                return message
        raise ProtocolError(f"room {room_id}: no message #{seq} this device can read")

    async def check_in_force(self, room_id: str, roster_version: int, seq: int) -> None:
        """Check that no roster newer than `roster_version` took effect before event
        `seq` (a message this device just sealed to that version, and the server logged).

        The events from the one that carried `roster_version` (or from where this
        client's replay of the room stands) through `seq` are read and checked as
        any reader would; a roster among them means the server showed this device
        a stale roster: `StaleRosterError`, before the send is reported a success.
        """
        chain = self._chains.chain(room_id)
        carried = self._chains.carried_at(room_id, roster_version)
        start = chain.position if chain.state_known else max(carried - 1, 0)
        if start < seq:
            async for _, cursor in self._pages(room_id, start, decrypt=False):
                if cursor >= seq:
                    break
        # `carried` is 0 when this client never asked for the version (a send resumed
        # from the keystore, sealed by an earlier run): then there is no claim to hold
        # the events to, and the roster read from them is what counts below.
        if carried and chain.roster_seqs.get(roster_version, carried) != carried:
            raise VerificationError(
                f"room {room_id}: the server said event {carried} carried roster version "
                f"{roster_version}, but event {chain.roster_seqs[roster_version]} did"
            )
        superseded = RoomChains.superseded(chain, seq, roster_version)
        if superseded is not None:
            version, at = superseded
            raise StaleRosterError(
                f"room {room_id}: your message was logged as event {seq} sealed to roster "
                f"version {roster_version}, the roster the server showed you, but version "
                f"{version} took effect at event {at}, before it; members that version "
                "removed may read it, and other members' devices will refuse it"
            )

    async def _pages(
        self, room_id: str, cursor: int, *, decrypt: bool = True, patient: bool = False
    ) -> AsyncIterator[tuple[list[Message | RoomChange], int]]:
        """Pages of checked events after `cursor`, up to the end of the room.

        Every leaf of a room's log is an event, so the room ends where the newest
        checkpoint does: pages continue until they reach it, and a server that
        stops short of its own checkpoint, or shows a checkpoint older than one
        this device verified, is withholding events (`WithheldError`); one whose
        log shrank below it has rolled back (`RolledBackError`). `patient`: the
        requests wait for a server that went away (see `HttpSession.patiently`).
        """
        while True:
            with _waiting(patient):  # never across the yield
                asked = self._logs.since(room_id)
                try:
                    page = await self._http.call(
                        EventsPage,
                        "GET",
                        f"/v1/rooms/{room_id}/events",
                        params={"after": cursor, "limit": PAGE, "since": asked},
                    )
                except InvalidRequestError as exc:
                    await self._logs.refused_since(room_id, asked, exc)
                    raise
                checkpoint = await self._logs.accept_newest(
                    room_id,
                    page.checkpoint,
                    asked=asked,
                    since=page.since,
                    proof=page.consistency_proof,
                )
                messages, cursor = await self._check_events(
                    room_id, page.events, cursor, checkpoint, decrypt=decrypt
                )
            yield messages, cursor
            if cursor >= checkpoint.size:
                return
            if not page.events:
                raise WithheldError(
                    f"room {room_id}: the server's signed checkpoint covers "
                    f"{checkpoint.size} events, but it serves none after event {cursor}: "
                    f"events {cursor + 1}..{checkpoint.size} are hidden from you"
                )

    async def _process_batch(
        self, room_id: str, batch: BatchFrame, cursor: int
    ) -> tuple[list[Message | RoomChange], int]:
        checkpoint = await self._logs.accept(
            room_id, batch.checkpoint, since=batch.since, proof=batch.consistency_proof
        )
        return await self._check_events(room_id, batch.events, cursor, checkpoint)

    async def _check_events(
        self,
        room_id: str,
        events: list[EventOut],
        cursor: int,
        checkpoint: Checkpoint,
        *,
        decrypt: bool = True,
    ) -> tuple[list[Message | RoomChange], int]:
        _check_order(room_id, [event.seq for event in events], cursor)
        messages: list[Message | RoomChange] = []
        async with self._chains.replaying(room_id) as chain:
            for event in events:
                message = await self._process(
                    room_id, chain, event, cursor, checkpoint, decrypt=decrypt
                )
                cursor = event.seq
                if message is not None:
                    messages.append(message)
        return messages, cursor

    async def _process(
        self,
        room_id: str,
        chain: RoomChain,
        event: EventOut,
        cursor: int,
        checkpoint: Checkpoint,
        *,
        decrypt: bool = True,
    ) -> Message | RoomChange | None:
        seq = event.seq
        if seq > cursor + 1:
            raise DroppedEventError(
                f"room {room_id}: event {seq} does not follow {cursor}: "
                f"events {cursor + 1}..{seq - 1} are missing"
            )
        if seq <= cursor:
            raise ReorderedError(
                f"room {room_id}: event {seq} does not follow {cursor}: it came after it"
            )
        if event.leaf_index != seq - 1:
            raise AlteredError(
                f"room {room_id}: event {seq} names leaf {event.leaf_index}, not {seq - 1}"
            )
        kind = event.kind
        payload = event.payload
        if kind in (EventKind.ROSTER, EventKind.MODERATION, EventKind.INSTRUMENT):
            signed = signed_statement(payload)
            payload_hash, signature = signed.body_hash(), signed.signature
        elif kind is EventKind.MESSAGE:
            try:
                envelope = Envelope.model_validate(payload)
            except ValidationError as exc:
                raise VerificationError(f"room {room_id}: event {seq} is not an envelope") from exc
            payload_hash, signature = sha256(envelope.signed_bytes()), envelope.signature
        else:
            raise VerificationError(f"room {room_id}: event {seq} has unknown kind {kind!r}")
        await self._logs.check_leaf(
            room_id,
            checkpoint,
            event.leaf,
            event.inclusion_proof,
            index=seq - 1,
            type=kind.value,
            actor_device=event.sender_device,
            payload_hash=payload_hash,
            signature=signature,
            server_time=event.created_at,
        )
        leaf = b64(event.leaf)
        self._logs.track_leaf(room_id, seq - 1, leaf)
        self._chains.advance(chain, seq)
        chain.leaf_hashes[seq] = leaf_hash(leaf)
        if kind is EventKind.MODERATION:
            await self._chains.moderation_event(room_id, chain, signed, seq)
            return (
                await moderation_change(self._chains, room_id, event, signed) if decrypt else None
            )
        if kind is EventKind.ROSTER:
            roster = await self._chains.roster_event(room_id, chain, signed, seq)
            return await roster_change(self._chains, room_id, event, roster) if decrypt else None
        if kind is EventKind.INSTRUMENT:
            act = await self._chains.instrument_event(room_id, chain, signed, seq, event.created_at)
            return await self._instrument(room_id, event, act, signed, decrypt=decrypt)
        return await self._open(room_id, chain, event, envelope, decrypt=decrypt)

    async def _instrument(
        self, room_id: str, event: EventOut, act: Act, signed: SignedStatement, *, decrypt: bool
    ) -> Message | None:
        """An instrument act as a message: its sealed part opened if it is sealed to this
        device. Receipts are not messages (see `Receipts`)."""
        if isinstance(act, ReceiptAct) or not decrypt:
            return None
        roster, _ = await self._chains.roster(room_id, act.roster_version)
        signer = roster.device_owner(act.signer_device)
        assert signer is not None  # the chain checked the signature by this device
        content: dict[str, object] = {"type": "instrument"}
        state = self._keystore.state
        sealed = act.sealed
        if sealed is not None and state.device_id in sealed.header.recipients:
            key = b64d(signer.signing_key_of(act.signer_device))
            content = opening.decrypt(state, sealed, key)
        return Message(
            room_id=room_id,
            seq=event.seq,
            leaf_index=event.leaf_index,
            channel=PLENARY if sealed is None else sealed.header.channel,
            message_id=act.instrument_id,
            sender_account_id=signer.account_id,
            sender_name=signer.name,
            sender_device=act.signer_device,
            sent_at=act.issued_at,
            server_time=event.created_at,
            text="",
            content=dict(content),
            signed_sha256=b64e(signed.body_hash()),
            relay=None,
            instrument=act,
            sender_side=signer.side.value,
        )

    async def _open(
        self,
        room_id: str,
        chain: RoomChain,
        event: EventOut,
        envelope: Envelope,
        *,
        decrypt: bool = True,
    ) -> Message | None:
        header = envelope.header
        seq = event.seq
        if header.room_id != room_id or header.sender_device != event.sender_device:
            raise VerificationError(f"room {room_id}: event {seq} envelope is misaddressed")
        roster, _ = await self._chains.roster(room_id, header.roster_version)
        if channel_sides(header.channel) is None or header.recipients != channel_devices(
            roster, header.channel
        ):
            raise VerificationError(
                f"room {room_id}: event {seq} recipients are not the devices of {header.channel!r}"
            )
        sender = roster.device_owner(header.sender_device)
        if sender is None:
            raise VerificationError(f"room {room_id}: event {seq} sender is not in the roster")
        self._chains.check_post(room_id, chain, seq, roster, sender, header.channel)
        sender_key = sender.signing_key_of(header.sender_device)
        try:  # every event, even one this device cannot open
            check_envelope(envelope, b64d(sender_key))
        except VerificationError as exc:
            raise AlteredError(f"room {room_id}: event {seq}: {exc}") from exc
        self._chains.message_event(room_id, chain, seq, message_id=header.message_id)
        superseded = self._chains.superseded(chain, seq, header.roster_version)
        if superseded is not None:
            # The sender was shown a stale roster (its SDK says so when it sends);
            # reported here, never opened, and the room reads on past it.
            version, at = superseded
            refusal = StaleRosterError(
                f"room {room_id}: event {seq} from {sender.name} is sealed to roster "
                f"version {header.roster_version}, but version {version} took effect at "
                f"event {at}; it is not shown"
            )
            return None if not decrypt else _refused(room_id, event, envelope, sender, refusal)
        if header.checkpoint is not None:
            await self._logs.check_prefix(
                room_id,
                header.checkpoint.size,
                b64(header.checkpoint.root),
                who=f"{sender.name} (event {seq})",
            )
        state = self._keystore.state
        if state.device_id not in header.recipients or not decrypt:
            return None  # not sealed to this device (another channel, or before it joined)
        content = opening.decrypt(state, envelope, b64d(sender_key))
        text = content.get("text")
        message = _message(
            room_id,
            event,
            envelope,
            sender,
            text=text if isinstance(text, str) else "",
            content=content,
            sender_side=sender.side.value,
        )
        if content.get("type") == "relay":
            relay = opening.check_relay(room_id, message, sender.side, chain.readable)
            message = replace(message, relay=relay)
        self._chains.remember(chain, message)
        return message


def _refused(
    room_id: str,
    event: EventOut,
    envelope: Envelope,
    sender: RosterMember,
    refusal: VerificationError,
) -> Message:
    """A message event reported, not opened: `refused` says what the server did."""
    return _message(
        room_id, event, envelope, sender, text="", content={"type": "refused"}, refused=refusal
    )


def _message(
    room_id: str,
    event: EventOut,
    envelope: Envelope,
    sender: RosterMember,
    *,
    text: str,
    content: dict[str, Any],
    sender_side: str | None = None,
    refused: VerificationError | None = None,
) -> Message:
    """The message of a checked event, as its header and the roster name it."""
    header = envelope.header
    return Message(
        room_id=room_id,
        seq=event.seq,
        leaf_index=event.leaf_index,
        channel=header.channel,
        message_id=header.message_id,
        sender_account_id=sender.account_id,
        sender_name=sender.name,
        sender_device=header.sender_device,
        sent_at=header.sent_at,
        server_time=event.created_at,
        text=text,
        content=content,
        signed_sha256=b64e(sha256(envelope.signed_bytes())),
        relay=None,
        sender_side=sender_side,
        refused=refused,
    )


def _only_messages(events: list[Message | RoomChange]) -> list[Message]:
    return [event for event in events if isinstance(event, Message)]


def _check_order(room_id: str, seqs: list[int], cursor: int) -> None:
    """Events come numbered one after another from `cursor`: name a gap as dropped, and
    the same events out of order (or one twice) as reordered."""
    expected = list(range(cursor + 1, cursor + 1 + len(seqs)))
    if seqs == expected:
        return
    if sorted(seqs) == expected or len(set(seqs)) < len(seqs):
        first = next(
            i for i, (got, want) in enumerate(zip(seqs, expected, strict=True)) if got != want
        )
        raise ReorderedError(
            f"room {room_id}: event {seqs[first]} does not follow "
            f"{expected[first] - 1}: it came before event {expected[first]}"
        )


def _waiting(patient: bool) -> AbstractContextManager[None]:
    """`patiently()` for a follower's requests, nothing for a one-off read's."""
    return patiently() if patient else nullcontext()
