"""Reading: every event checked (log, rosters, moderation, rules, signature) first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from client_sdk.client.base import (
    PAGE,
    _ClientBase,
)
from client_sdk.client.helpers import (
    b64,
    signed_statement,
)
from client_sdk.client.models import (
    Message,
    Relay,
    _RoomChain,
)
from client_sdk.client.stream import EventStream
from client_sdk.protocol.encoding import b64d, b64e, sha256
from client_sdk.protocol.envelope import (
    Envelope,
    check_envelope,
    open_envelope,
)
from client_sdk.protocol.errors import NotPermitted, VerificationError
from client_sdk.protocol.mediation import RoomState, channel_devices, channel_sides
from client_sdk.protocol.merkle import CompactRange, leaf_hash
from client_sdk.protocol.models import Side
from client_sdk.protocol.note import Checkpoint
from client_sdk.protocol.statements import (
    Moderation,
    SignedStatement,
    verify_statement,
)


class _Reading(_ClientBase):
    """Reading: every event checked (log, rosters, moderation, rules, signature) first."""

    async def _replay(self, room_id: str) -> None:
        """Check every event of the room not replayed yet, without decrypting messages."""
        chain = self._chains.get(room_id)
        cursor = chain.position if chain is not None and chain.state_known else 0
        while True:
            page = await self.http.request(
                "GET",
                f"/v1/rooms/{room_id}/events",
                params={"after": cursor, "limit": PAGE, "since": self.logs.since(room_id)},
            )
            _, cursor = await self._process_batch(room_id, page, cursor, decrypt=False)
            if len(page["events"]) < PAGE:
                return

    async def messages(
        self, room_id: str, *, after: int = 0, follow: bool = False, channel: str | None = None
    ) -> AsyncIterator[Message]:
        """Verified, decrypted messages after `after` (only `channel`'s, if given); see
        `_messages`."""
        async for message in self._messages(room_id, after=after, follow=follow):
            if channel is None or message.channel == channel:
                yield message

    async def _messages(
        self, room_id: str, *, after: int = 0, follow: bool = False
    ) -> AsyncIterator[Message]:
        """Verified, decrypted messages after sequence number `after`.

        Every event is checked before it is handed over: its leaf is in a
        checkpoint signed by the pinned log key and consistent with every
        checkpoint verified before; then the roster chain, the recipients, the
        signature and the sender's view of the log. With `follow`, keep
        streaming over the WebSocket, reconnecting and resuming from the last
        event seen: no gap and no duplicate.
        """
        await self.maintain_keys()
        cursor = after
        while True:
            page = await self.http.request(
                "GET",
                f"/v1/rooms/{room_id}/events",
                params={"after": cursor, "limit": PAGE, "since": self.logs.since(room_id)},
            )
            messages, cursor = await self._process_batch(room_id, page, cursor)
            for message in messages:
                yield message
            if len(page["events"]) < PAGE:
                break
        if not follow:
            return
        stream = EventStream(self.http, room_id, since=lambda: self.logs.since(room_id))
        async for batch in stream.batches(after=cursor):
            messages, cursor = await self._process_batch(room_id, batch, cursor)
            for message in messages:
                yield message

    async def _process_batch(
        self, room_id: str, batch: dict[str, Any], cursor: int, *, decrypt: bool = True
    ) -> tuple[list[Message], int]:
        checkpoint = await self.logs.accept(
            room_id,
            str(batch["checkpoint"]),
            since=int(batch["since"]),
            proof=batch["consistency_proof"],
        )
        messages = []
        for event in batch["events"]:
            message = await self._process(room_id, event, cursor, checkpoint, decrypt=decrypt)
            cursor = int(event["seq"])
            if message is not None:
                messages.append(message)
        return messages, cursor

    async def _process(
        self,
        room_id: str,
        event: dict[str, Any],
        cursor: int,
        checkpoint: Checkpoint,
        *,
        decrypt: bool = True,
    ) -> Message | None:
        seq = int(event["seq"])
        if seq != cursor + 1 or int(event["leaf_index"]) != seq - 1:
            raise VerificationError(f"room {room_id}: event {seq} does not follow {cursor}")
        kind = str(event["kind"])
        payload = event.get("payload")
        if kind in ("roster", "moderation"):
            signed = signed_statement(payload)
            payload_hash, signature = signed.body_hash(), signed.signature
        elif kind == "message":
            try:
                envelope = Envelope.model_validate(payload)
            except ValidationError as exc:
                raise VerificationError(f"room {room_id}: event {seq} is not an envelope") from exc
            payload_hash, signature = sha256(envelope.signed_bytes()), envelope.signature
        else:
            raise VerificationError(f"room {room_id}: event {seq} has unknown kind {kind!r}")
        await self.logs.check_leaf(
            room_id,
            checkpoint,
            event["leaf"],
            event["inclusion_proof"],
            index=seq - 1,
            type=kind,
            actor_device=str(event["sender_device"]),
            payload_hash=payload_hash,
            signature=signature,
            server_time=int(event["created_at"]),
        )
        self._track_root(room_id, seq - 1, b64(str(event["leaf"])))
        chain = self._chains.setdefault(room_id, _RoomChain())
        if seq == 1:
            chain.state, chain.state_known = RoomState(), True
        elif chain.position != seq - 1:
            chain.state_known = False
        chain.position = seq
        if kind == "moderation":
            await self._accept_moderation(room_id, signed, seq)
            return None
        if kind == "roster":
            roster = await self._accept_roster(room_id, signed)
            seen = self._chains[room_id].roster_seqs.setdefault(roster.version, seq)
            if seen != seq:
                raise VerificationError(
                    f"room {room_id}: event {seq} replays roster version {roster.version} "
                    f"of event {seen}"
                )
            return None
        return await self._open(room_id, event, envelope, decrypt=decrypt)

    async def _accept_moderation(self, room_id: str, signed: SignedStatement, seq: int) -> None:
        """Check a moderation act against the roster in force and replay it."""
        chain = self._chains[room_id]
        try:
            act = Moderation.model_validate(signed.body)
        except ValidationError as exc:
            raise VerificationError(f"room {room_id}: event {seq} is not a moderation act") from exc
        if act.room_id != room_id:
            raise VerificationError(f"room {room_id}: event {seq} moderates another room")
        in_force = max((v for v, at in chain.roster_seqs.items() if at < seq), default=None)
        if in_force is not None and act.roster_version != in_force:
            raise VerificationError(
                f"room {room_id}: event {seq} names roster version {act.roster_version}, "
                f"but version {in_force} was in force"
            )
        roster, _ = await self._roster(room_id, act.roster_version)
        signer = roster.device_owner(act.signer_device)
        if signer is None or signer.side is not Side.MEDIATOR:
            raise VerificationError(
                f"room {room_id}: event {seq} is a moderation act not signed by a mediator"
            )
        key = signer.signing_key_of(act.signer_device)
        try:
            verify_statement(signed, b64d(key), Moderation)
        except VerificationError as exc:
            raise VerificationError(f"room {room_id}: event {seq}: {exc}") from exc
        first = chain.message_seqs.setdefault(act.moderation_id, seq)
        if first != seq:
            raise VerificationError(
                f"room {room_id}: event {seq} replays moderation act of event {first}"
            )
        if chain.state_known:
            try:
                chain.state = chain.state.apply(act, roster)
            except NotPermitted as exc:
                raise VerificationError(
                    f"room {room_id}: event {seq}: the server logged an act the room's "
                    f"rules refuse: {exc}"
                ) from exc

    def _track_root(self, room_id: str, index: int, leaf: bytes) -> None:
        """Keep the root at every size of a log read from its start (for gossip checks)."""
        frontier = self._frontiers.get(room_id, CompactRange())
        if frontier.size != index:
            return
        frontier, _ = frontier.append(leaf_hash(leaf))
        self._frontiers[room_id] = frontier
        self.logs.roots.setdefault(room_id, {})[frontier.size] = frontier.root()

    async def _open(
        self, room_id: str, event: dict[str, Any], envelope: Envelope, *, decrypt: bool = True
    ) -> Message | None:
        header = envelope.header
        seq = int(event["seq"])
        if header.room_id != room_id or header.sender_device != event["sender_device"]:
            raise VerificationError(f"room {room_id}: event {seq} envelope is misaddressed")
        roster, _ = await self._roster(room_id, header.roster_version)
        if channel_sides(header.channel) is None or header.recipients != channel_devices(
            roster, header.channel
        ):
            raise VerificationError(
                f"room {room_id}: event {seq} recipients are not the devices of {header.channel!r}"
            )
        sender = roster.device_owner(header.sender_device)
        if sender is None:
            raise VerificationError(f"room {room_id}: event {seq} sender is not in the roster")
        chain = self._chains[room_id]
        if chain.state_known:
            try:
                chain.state.check_post(roster, sender.account_id, header.channel)
            except NotPermitted as exc:
                raise VerificationError(
                    f"room {room_id}: event {seq} from {sender.name} breaks the room's rules: {exc}"
                ) from exc
        sender_key = sender.signing_key_of(header.sender_device)
        try:  # every event, even one this device cannot open
            check_envelope(envelope, b64d(sender_key))
        except VerificationError as exc:
            raise VerificationError(f"room {room_id}: event {seq}: {exc}") from exc
        chain = self._chains[room_id]
        superseded = [
            (v, at) for v, at in chain.roster_seqs.items() if v > header.roster_version and at < seq
        ]
        if superseded:
            version, at = min(superseded)
            raise VerificationError(
                f"room {room_id}: event {seq} is sealed to roster version "
                f"{header.roster_version}, but version {version} took effect at event {at}"
            )
        first = chain.message_seqs.setdefault(header.message_id, seq)
        if first != seq:
            raise VerificationError(
                f"room {room_id}: event {seq} replays message {header.message_id}, "
                f"first seen at event {first}"
            )
        if header.checkpoint is not None:
            await self.logs.check_prefix(
                room_id,
                header.checkpoint.size,
                b64(header.checkpoint.root),
                who=f"{sender.name} (event {seq})",
            )
        state = self.keystore.state
        if state.device_id not in header.recipients or not decrypt:
            return None  # not sealed to this device (another channel, or before it joined)
        content = self._decrypt(envelope, b64d(sender_key))
        text = content.get("text")
        message = Message(
            room_id=room_id,
            seq=seq,
            leaf_index=int(event["leaf_index"]),
            channel=header.channel,
            message_id=header.message_id,
            sender_account_id=sender.account_id,
            sender_name=sender.name,
            sender_device=header.sender_device,
            sent_at=header.sent_at,
            server_time=int(event["created_at"]),
            text=text if isinstance(text, str) else "",
            content=content,
            signed_sha256=b64e(sha256(envelope.signed_bytes())),
            relay=None,
        )
        if content.get("type") == "relay":
            message = replace(message, relay=self._check_relay(room_id, message, sender.side))
        chain.readable[seq] = message
        return message

    def _check_relay(self, room_id: str, message: Message, side: Side) -> Relay:
        """What a relay says it passes on, checked against the original where we read it."""
        where = f"room {room_id}: relay #{message.seq}"
        original = message.content.get("original")
        if side is not Side.MEDIATOR or not isinstance(original, dict):
            raise VerificationError(f"{where} is not a mediator's relay of a message")
        try:
            relay = Relay(
                original_seq=int(original["seq"]),
                original_channel=str(original["channel"]),
                original_sender_name=str(original["sender_name"]),
                original_sender_account_id=str(original["sender_account_id"]),
                edited=bool(message.content.get("edited")),
                checked=False,
            )
            signed_sha256 = str(original["signed_sha256"])
            text_sha256 = str(original["text_sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationError(f"{where} is malformed") from exc
        seen = self._chains[room_id].readable.get(relay.original_seq)
        if seen is None:
            return relay  # we cannot read the original: nothing to compare
        if seen.signed_sha256 != signed_sha256 or seen.sender_account_id != (
            relay.original_sender_account_id
        ):
            raise VerificationError(f"{where} misquotes message #{relay.original_seq}")
        if b64e(sha256(seen.text.encode("utf-8"))) != text_sha256:
            raise VerificationError(f"{where} misstates the original text's hash")
        if (seen.text != message.text) != relay.edited:
            raise VerificationError(
                f"{where} says it is {'edited' if relay.edited else 'unedited'}, "
                "but the texts say otherwise"
            )
        return replace(relay, checked=True)

    def _decrypt(self, envelope: Envelope, sender_key: bytes) -> dict[str, Any]:
        """Open with whichever of this device's keys works.

        A message older than every key still held was sealed to a key purged on
        purpose; its signature still verifies, and it reads as ``expired``.
        """
        check_envelope(envelope, sender_key)
        state = self.keystore.state
        records = sorted(state.encryption_keys, key=lambda r: r.created_at, reverse=True)
        failure: VerificationError | None = None
        for record in records:
            try:
                return open_envelope(
                    envelope,
                    sender_signing_key=sender_key,
                    recipient_device=state.device_id,
                    recipient_key=record.private,
                )
            except VerificationError as exc:
                failure = exc
        if records and envelope.header.sent_at < min(r.created_at for r in records):
            return {"type": "expired", "text": ""}
        raise failure or VerificationError("no encryption key left to open the message")
