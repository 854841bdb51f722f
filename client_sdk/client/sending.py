"""Sending: sealing to exactly a channel's devices, relays, retries and receipts."""

from __future__ import annotations

from typing import Any

from client_sdk.client.base import (
    PLENARY,
    SEALED_KEPT,
    SEND_ATTEMPTS,
    _ClientBase,
)
from client_sdk.client.models import (
    Message,
    Receipt,
)
from client_sdk.protocol.encoding import b64e, sha256
from client_sdk.protocol.envelope import (
    CheckpointRef,
    Envelope,
    Recipient,
    seal_envelope,
)
from client_sdk.protocol.errors import ProtocolError, TransportError, VerificationError
from client_sdk.protocol.mediation import (
    channel_devices,
    channel_sides,
)
from client_sdk.protocol.statements import (
    Roster,
)


class _Sending(_ClientBase):
    """Sending: sealing to exactly a channel's devices, relays, retries and receipts."""

    # --- messages -------------------------------------------------------------------

    async def send(
        self, room_id: str, text: str, *, channel: str = PLENARY, message_id: str | None = None
    ) -> Receipt:
        """Encrypt `text` to exactly the devices of `channel` in the room's current roster,
        sign it and send it.

        The receipt is checked: the server's checkpoint is consistent with what
        this client verified before, and the message's leaf is included in it.
        """
        return await self._send_content(
            room_id, {"type": "text", "text": text}, channel=channel, message_id=message_id
        )

    async def relay(self, room_id: str, seq: int, *, to: str, edit: str | None = None) -> Receipt:
        """(Mediators) pass message `seq` on to channel `to`, re-encrypted and signed by you.

        The relay carries the original's channel, sender and the hash of what its
        sender signed, so anyone who can read both can check what was passed on
        and whether (`edit`) it was changed.
        """
        original = await self._message_at(room_id, seq)
        text = original.text if edit is None else edit
        content = {
            "type": "relay",
            "text": text,
            "edited": edit is not None and edit != original.text,
            "original": {
                "seq": original.seq,
                "channel": original.channel,
                "message_id": original.message_id,
                "sender_account_id": original.sender_account_id,
                "sender_name": original.sender_name,
                "signed_sha256": original.signed_sha256,
                "text_sha256": b64e(sha256(original.text.encode("utf-8"))),
            },
        }
        return await self._send_content(room_id, content, channel=to)

    async def _message_at(self, room_id: str, seq: int) -> Message:
        async for message in self.messages(room_id, after=0):
            if message.seq == seq:
                return message
        raise ProtocolError(f"room {room_id}: no message #{seq} this device can read")

    async def _send_content(
        self,
        room_id: str,
        content: dict[str, Any],
        *,
        channel: str,
        message_id: str | None = None,
    ) -> Receipt:
        if channel_sides(channel) is None:
            raise ProtocolError(f"unknown channel {channel!r}: plenary, caucus-a or caucus-b")
        sealed = None if message_id is None else self._sealed.get((room_id, message_id))
        if sealed is not None:
            # A retry: the very same envelope, so the server answers with the first receipt.
            return await self._post_envelope(room_id, sealed)
        await self.maintain_keys()
        data = await self.http.request("GET", f"/v1/rooms/{room_id}")
        roster, _ = await self._served_roster(room_id, data)
        devices = set(channel_devices(roster, channel))
        recipients = [
            r
            for r in await self._recipients(
                roster, require_verified=roster.policy.require_verified, channel=channel
            )
            if r.device_id in devices
        ]
        state = self.keystore.state
        seen = self.keystore.checkpoint(room_id)
        envelope = seal_envelope(
            content=content,
            room_id=room_id,
            channel=channel,
            roster_version=roster.version,
            sender_device=state.device_id,
            sender_key=state.device_key,
            recipients=recipients,
            sent_at=self.clock(),
            message_id=message_id,
            checkpoint=None
            if seen is None
            else CheckpointRef(size=seen.size, root=b64e(seen.root)),
        )
        if len(self._sealed) >= SEALED_KEPT:
            self._sealed.pop(next(iter(self._sealed)))
        self._sealed[(room_id, envelope.header.message_id)] = envelope
        return await self._post_envelope(room_id, envelope)

    async def _post_envelope(self, room_id: str, envelope: Envelope) -> Receipt:
        """Post an envelope, retrying it unchanged after a lost connection (the server
        answers a repeated message id with its first receipt), and check the receipt."""
        for attempt in range(SEND_ATTEMPTS):
            try:
                result = await self.http.request(
                    "POST",
                    f"/v1/rooms/{room_id}/messages",
                    json=envelope.model_dump(mode="json"),
                )
                break
            except TransportError:
                if attempt == SEND_ATTEMPTS - 1:
                    raise
        await self._check_receipt(room_id, envelope, result)
        return Receipt(
            room_id=room_id,
            seq=int(result["seq"]),
            leaf_index=int(result["leaf_index"]),
            message_id=str(result["message_id"]),
        )

    async def _check_receipt(
        self, room_id: str, envelope: Envelope, result: dict[str, Any]
    ) -> None:
        """The answer's checkpoint is consistent with our view and includes our leaf."""
        await self._check_logged(
            room_id, result, "message", sha256(envelope.signed_bytes()), envelope.signature
        )

    async def _recipients(
        self, roster: Roster, *, require_verified: bool, channel: str = PLENARY
    ) -> list[Recipient]:
        sides = channel_sides(channel) or set()
        recipients = []
        for member in roster.members:
            if member.side not in sides:
                continue
            account = await self.account(member.account_id)
            if b64e(account.account_key) != member.account_key:
                raise VerificationError(
                    f"account {member.account_id}: roster and directory keys differ"
                )
            self.keystore.require_trusted(
                member.account_id, account.account_key, require_verified=require_verified
            )
            for device in member.devices:
                verified = account.devices.get(device.device_id)
                if verified is None or b64e(verified.signing_key) != device.signing_key:
                    raise VerificationError(
                        f"device {device.device_id} of {member.account_id} is not certified"
                    )
                if verified.encryption_key is None:
                    raise VerificationError(
                        f"device {device.device_id} of {member.account_id} has no valid "
                        "encryption key"
                    )
                recipients.append(Recipient(device.device_id, verified.encryption_key))
        return recipients
