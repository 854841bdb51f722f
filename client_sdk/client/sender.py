"""Sending: sealing to exactly a channel's devices, retries and checked receipts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from client_sdk.client.chains import RoomChains
from client_sdk.client.directory import Directory
from client_sdk.client.helpers import Clock
from client_sdk.client.http import HttpSession
from client_sdk.client.keys import KeyRotation
from client_sdk.client.logs import LogVerifier
from client_sdk.client.models import Message, Receipt
from client_sdk.client.vouching import member_trust
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64e, sha256
from client_sdk.protocol.envelope import CheckpointRef, Envelope, Recipient, seal_envelope
from client_sdk.protocol.errors import (
    KeySubstitutedError,
    ProtocolError,
    RevokedDeviceError,
    TransportError,
    VerificationError,
)
from client_sdk.protocol.mediation import channel_devices, channel_sides
from client_sdk.protocol.models import Side
from client_sdk.protocol.statements import Roster
from client_sdk.protocol.wire.events import SendResponse

PLENARY = "plenary"
SEND_ATTEMPTS = 3
SEALED_KEPT = 1024
"""Envelopes remembered by message id, so that a retried send is the same envelope."""
CheckInForce = Callable[[str, int, int], Awaitable[None]]
"""Checks that roster version (2nd) was in force at event (3rd) of a room (1st): raises
`StaleRosterError` if a newer one took effect before it (`Reader.check_in_force`)."""


class Sender:
    """Seals, posts and checks messages of this device."""

    def __init__(
        self,
        http: HttpSession,
        logs: LogVerifier,
        chains: RoomChains,
        directory: Directory,
        keys: KeyRotation,
        keystore: Keystore,
        clock: Clock,
        in_force: CheckInForce,
    ) -> None:
        self._in_force = in_force
        self._http = http
        self._logs = logs
        self._chains = chains
        self._directory = directory
        self._keys = keys
        self._keystore = keystore
        self._clock = clock
        self._sealed: dict[tuple[str, str], Envelope] = {}

    async def send(
        self,
        room_id: str,
        content: dict[str, Any],
        *,
        channel: str,
        message_id: str | None = None,
        content_key: bytes | None = None,
    ) -> Receipt:
        """Seal `content` to exactly the devices of `channel` in the room's current
        roster, sign it, send it and check the receipt.

        A `message_id` sent before is a retry: the very same envelope is sent
        again, so the server answers with the first receipt. `content_key` seals
        under a key the caller chose (a document's chunks were sealed under a key
        derived from it); it must serve this one message id only.
        """
        if channel_sides(channel) is None:
            raise ProtocolError(f"unknown channel {channel!r}: plenary, caucus-a or caucus-b")
        sealed = None if message_id is None else self._sealed.get((room_id, message_id))
        if sealed is not None:
            return await self.post(room_id, sealed)
        envelope = await self.seal(
            room_id, content, channel=channel, message_id=message_id, content_key=content_key
        )
        if len(self._sealed) >= SEALED_KEPT:
            self._sealed.pop(next(iter(self._sealed)))
        self._sealed[(room_id, envelope.header.message_id)] = envelope
        return await self.post(room_id, envelope)

    async def seal(
        self,
        room_id: str,
        content: dict[str, Any],
        *,
        channel: str,
        message_id: str | None = None,
        roster: Roster | None = None,
        content_key: bytes | None = None,
    ) -> Envelope:
        """Seal `content` to exactly the devices of `channel` in `roster` (default: the
        room's current roster, verified), signed by this device (under `content_key`, if
        the caller chose it: see `send`)."""
        await self._keys.maintain()
        if roster is None:
            roster, _ = await self._chains.current(room_id)
        devices = set(channel_devices(roster, channel))
        recipients = [
            r
            for r in await self.recipients(roster, channel_sides(channel) or set())
            if r.device_id in devices
        ]
        state = self._keystore.state
        seen = self._keystore.checkpoint(room_id)
        return seal_envelope(
            content=content,
            room_id=room_id,
            channel=channel,
            roster_version=roster.version,
            sender_device=state.device_id,
            sender_key=state.device_key,
            recipients=recipients,
            sent_at=self._clock(),
            message_id=message_id,
            content_key=content_key,
            checkpoint=None
            if seen is None
            else CheckpointRef(size=seen.size, root=b64e(seen.root)),
        )

    async def post(self, room_id: str, envelope: Envelope) -> Receipt:
        """Post an envelope, retrying it unchanged after a lost connection (the server
        answers a repeated message id with its first receipt), and check the receipt and
        that the roster it was sealed to was still in force where it landed."""
        for attempt in range(SEND_ATTEMPTS):
            try:
                result = await self._http.call(
                    SendResponse,
                    "POST",
                    f"/v1/rooms/{room_id}/messages",
                    json=envelope.model_dump(mode="json"),
                )
                break
            except TransportError:
                if attempt == SEND_ATTEMPTS - 1:
                    raise
        await self._logs.check_logged(
            room_id,
            result,
            kind="message",
            actor_device=self._keystore.state.device_id,
            payload_hash=sha256(envelope.signed_bytes()),
            signature=envelope.signature,
        )
        if result.message_id != envelope.header.message_id or result.seq != result.leaf_index + 1:
            raise VerificationError(
                f"room {room_id}: the receipt names message {result.message_id} at event "
                f"{result.seq}, leaf {result.leaf_index}; sent {envelope.header.message_id}"
            )
        # The receipt proves where the message landed; the events up to it prove which
        # roster was in force there. A success is reported only if it was ours.
        await self._in_force(room_id, envelope.header.roster_version, result.seq)
        return Receipt(
            room_id=room_id,
            seq=result.seq,
            leaf_index=result.leaf_index,
            message_id=result.message_id,
        )

    async def recipients(self, roster: Roster, sides: set[Side]) -> list[Recipient]:
        """Every device of `roster`'s members on `sides`, with its encryption key, each
        account checked against the directory and trusted as the room's policy says
        (verified directly, or via the mediator where the policy lets it vouch)."""
        require_verified = roster.policy.require_verified
        signer = self._chains.signer(roster)
        recipients = []
        for member in roster.members:
            if member.side not in sides:
                continue
            account = await self._directory.account(member.account_id)
            if b64e(account.account_key) != member.account_key:
                raise KeySubstitutedError(
                    f"account {member.account_id}: roster and directory keys differ"
                )
            self._keystore.require_trusted(member.account_id, account.account_key)
            trust = member_trust(self._keystore, roster, signer, member)
            trust.require(require_verified=require_verified)
            for device in member.devices:
                revocation = account.revoked.get(device.device_id)
                if revocation is not None:
                    raise RevokedDeviceError(
                        room_id=roster.room_id,
                        account_id=member.account_id,
                        device_id=device.device_id,
                        authority=revocation.authority,
                    )
                verified = account.devices.get(device.device_id)
                if verified is None or b64e(verified.signing_key) != device.signing_key:
                    raise KeySubstitutedError(
                        f"device {device.device_id} of {member.account_id} is not certified"
                    )
                if verified.encryption_key is None:
                    raise VerificationError(
                        f"device {device.device_id} of {member.account_id} has no valid "
                        "encryption key"
                    )
                recipients.append(Recipient(device.device_id, verified.encryption_key))
        return recipients


def relay_content(original: Message, edit: str | None) -> dict[str, Any]:
    """What a mediator's relay of `original` says: the text passed on (`edit`, if
    given), and the original's channel, sender and the hash of what its sender signed,
    so anyone who can read both can check what was passed on and whether it changed."""
    text = original.text if edit is None else edit
    return {
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
