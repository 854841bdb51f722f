"""Opening a checked envelope: decryption with whichever of this device's keys works, and
the check of what a mediator's relay says about the message it passes on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from client_sdk.client.models import Message, Relay
from client_sdk.keystore import KeystoreState
from client_sdk.protocol.encoding import b64e, sha256
from client_sdk.protocol.envelope import Envelope, check_envelope, open_envelope
from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.models import Side


def decrypt(state: KeystoreState, envelope: Envelope, sender_key: bytes) -> dict[str, Any]:
    """Open with whichever of this device's keys works.

    A message older than every key still held was sealed to a key purged on
    purpose; its signature still verifies, and it reads as ``expired``.
    """
    check_envelope(envelope, sender_key)
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


def check_relay(
    room_id: str, message: Message, side: Side, readable: Mapping[int, Message]
) -> Relay:
    """What a relay says it passes on, checked against the original where we read it
    (`readable`: the messages this device opened, by event)."""
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
    seen = readable.get(relay.original_seq)
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
