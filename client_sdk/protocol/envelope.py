"""The message envelope (docs/design.md §5).

Sealing a message:

1. The plaintext (canonical JSON content) is length-prefixed and padded to a
   power-of-two bucket of at least 256 bytes, hiding its length.
2. A fresh 256-bit content key seals it with ChaCha20-Poly1305 (zero nonce:
   the key is never reused) under ``AAD = "parley/v1/content\\x00" || canonical(header
   without the ciphertext hash)``.
3. The header commits to the ciphertext (SHA-256) and to the content key
   (``SHA-256("parley/v1/key-commitment" || key || message id)``), so a sender
   cannot show different recipients different plaintexts.
4. The content key is sealed to each recipient device with HPKE (RFC 9180),
   by default ML-KEM-768+X25519 / HKDF-SHA256 / ChaCha20-Poly1305, ``info``
   binding room, message id, sender device, recipient device and header hash.
5. The sender's Ed25519 device key signs ``canonical({header, wraps})``.

`open_envelope` checks everything before returning a plaintext; any failure
is a `VerificationError`. Its two halves serve verifiable excerpts: a member
unwraps one message's content key (`unwrap_content_key`) to reveal it, and an
outsider opens that message alone with it (`decrypt_content`), after the key
commitment matches.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from pydantic import Field, ValidationError

from client_sdk.protocol.encoding import (
    b64d,
    b64e,
    canonical_json,
    parse_json_object,
    random_id,
    sha256,
)
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import (
    EncryptionKey,
    SigLabel,
    SigningKey,
    hpke_public_key,
    verify_signature,
)
from client_sdk.protocol.models import B64, Ident, Int, WireModel

ENVELOPE_VERSION: Final = 1
SUITE_XWING: Final = "hpke-mlkem768x25519-hkdfsha256-chacha20poly1305"
AUTH_SIGNED: Final = "ed25519"
MIN_BUCKET = 256
CONTENT_KEY_LEN = 32
_ZERO_NONCE = bytes(12)
_SUITES = {
    SUITE_XWING: hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
    ),
}
MAX_RECIPIENTS = 1024


class CheckpointRef(WireModel):
    """The newest checkpoint of the room's log that the sender has verified."""

    size: Int = Field(ge=0)
    root: B64


class Header(WireModel):
    """The signed, canonical envelope header."""

    v: Int = Field(ge=ENVELOPE_VERSION, le=ENVELOPE_VERSION)
    suite: Literal["hpke-mlkem768x25519-hkdfsha256-chacha20poly1305"]
    auth: Literal["ed25519"]
    room_id: Ident
    channel: Ident
    roster_version: Int = Field(ge=1)
    message_id: Ident
    sender_device: Ident
    recipients: list[Ident] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    ciphertext_sha256: B64
    key_commitment: B64
    checkpoint: CheckpointRef | None
    sent_at: Int


class Envelope(WireModel):
    """What travels and is stored: header, ciphertext, per-device key wraps, signature."""

    header: Header
    ciphertext: B64
    wraps: dict[Ident, B64]
    signature: B64

    def signed_bytes(self) -> bytes:
        """The bytes the sender's device key signs."""
        return signed_bytes(self.header, self.wraps)

    def header_hash(self) -> bytes:
        """SHA-256 of the canonical header."""
        return sha256(canonical_json(self.header.model_dump(mode="json")))


@dataclass(frozen=True, slots=True)
class Recipient:
    """A device to encrypt to: its id and its HPKE public key bytes."""

    device_id: str
    encryption_key: bytes


def signed_bytes(header: Header, wraps: dict[str, str]) -> bytes:
    """Canonical bytes of ``{header, wraps}``, which the sender signs."""
    return canonical_json({"header": header.model_dump(mode="json"), "wraps": wraps})


def pad(plaintext: bytes) -> bytes:
    """Length-prefix and zero-pad to the next power of two, at least 256 bytes."""
    needed = len(plaintext) + 4
    size = MIN_BUCKET
    while size < needed:
        size *= 2
    return len(plaintext).to_bytes(4, "big") + plaintext + bytes(size - needed)


def unpad(padded: bytes) -> bytes:
    """Undo `pad`; raise `VerificationError` if the padding is malformed."""
    if len(padded) < 4:
        raise VerificationError("padded plaintext too short")
    length = int.from_bytes(padded[:4], "big")
    if length > len(padded) - 4 or any(padded[4 + length :]):
        raise VerificationError("bad plaintext padding")
    return padded[4 : 4 + length]


def key_commitment(content_key: bytes, message_id: str) -> bytes:
    """The header's commitment to the content key."""
    return sha256(b"parley/v1/key-commitment\x00" + content_key + message_id.encode())


def wrap_info(header: Header, header_hash: bytes, recipient_device: str) -> bytes:
    """HPKE ``info`` for one recipient's key wrap (domain-separated)."""
    return b"parley/v1/wrap\x00" + canonical_json(
        {
            "room_id": header.room_id,
            "message_id": header.message_id,
            "sender_device": header.sender_device,
            "recipient_device": recipient_device,
            "header_sha256": b64e(header_hash),
        }
    )


def _aad(header: Header) -> bytes:
    body = header.model_dump(mode="json")
    del body["ciphertext_sha256"]
    return b"parley/v1/content\x00" + canonical_json(body)


def new_content_key() -> bytes:
    """A fresh 256-bit content key."""
    return os.urandom(CONTENT_KEY_LEN)


def new_message_id() -> str:
    """A fresh client-chosen message id (128 random bits, base64url, never starting with
    ``-``: instrument ids are message ids, and commands take them as arguments)."""
    return random_id(16)


def seal_envelope(
    *,
    content: dict[str, Any],
    room_id: str,
    channel: str,
    roster_version: int,
    sender_device: str,
    sender_key: SigningKey,
    recipients: list[Recipient],
    sent_at: int,
    message_id: str | None = None,
    checkpoint: CheckpointRef | None = None,
    content_key: bytes | None = None,
) -> Envelope:
    """Encrypt `content` to every recipient device and sign it.

    The content key is fresh unless the caller gives one (`new_content_key`): a
    document's chunks are sealed under a key derived from it before the message
    is (docs/design.md §7). A given key must serve this one message id only.
    """
    if not recipients:
        raise ProtocolError("a message needs at least one recipient")
    message_id = message_id or new_message_id()
    if content_key is None:
        content_key = new_content_key()
    elif len(content_key) != CONTENT_KEY_LEN:
        raise ProtocolError(f"a content key is {CONTENT_KEY_LEN} bytes")
    padded = pad(canonical_json(content))
    placeholder = Header(
        v=ENVELOPE_VERSION,
        suite=SUITE_XWING,
        auth=AUTH_SIGNED,
        room_id=room_id,
        channel=channel,
        roster_version=roster_version,
        message_id=message_id,
        sender_device=sender_device,
        recipients=sorted(r.device_id for r in recipients),
        ciphertext_sha256="",
        key_commitment=b64e(key_commitment(content_key, message_id)),
        checkpoint=checkpoint,
        sent_at=sent_at,
    )
    ciphertext = ChaCha20Poly1305(content_key).encrypt(_ZERO_NONCE, padded, _aad(placeholder))
    header = placeholder.model_copy(update={"ciphertext_sha256": b64e(sha256(ciphertext))})
    header_hash = sha256(canonical_json(header.model_dump(mode="json")))
    suite = _SUITES[header.suite]
    wraps = {
        r.device_id: b64e(
            suite.encrypt(
                content_key,
                hpke_public_key(r.encryption_key),
                info=wrap_info(header, header_hash, r.device_id),
            )
        )
        for r in recipients
    }
    signature = sender_key.sign(SigLabel.ENVELOPE, signed_bytes(header, wraps))
    return Envelope(
        header=header, ciphertext=b64e(ciphertext), wraps=wraps, signature=b64e(signature)
    )


def parse_envelope(data: dict[str, Any]) -> Envelope:
    """Parse a wire envelope strictly; raise `ProtocolError` on any malformation."""
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(f"malformed envelope: {exc.errors()[0]['msg']}") from exc


def check_envelope(
    envelope: Envelope, sender_signing_key: bytes, *, signed: bytes | None = None
) -> None:
    """The checks anyone can make without a private key: shape, hashes, signature.

    The server runs these before storing; recipients run them before opening.
    `signed` is ``envelope.signed_bytes()`` if the caller already computed it
    (canonicalising a large envelope costs milliseconds).
    """
    header = envelope.header
    if sorted(envelope.wraps) != header.recipients:
        raise VerificationError("key wraps do not match the header's recipient list")
    if len(set(header.recipients)) != len(header.recipients):
        raise VerificationError("duplicate recipient")
    try:
        ciphertext = b64d(envelope.ciphertext)
        signature = b64d(envelope.signature)
    except ProtocolError as exc:
        raise VerificationError(f"envelope: {exc}") from exc
    if b64e(sha256(ciphertext)) != header.ciphertext_sha256:
        raise VerificationError("ciphertext does not match the header's hash")
    if signed is None:
        signed = envelope.signed_bytes()
    verify_signature(sender_signing_key, SigLabel.ENVELOPE, signed, signature)


def open_envelope(
    envelope: Envelope,
    *,
    sender_signing_key: bytes,
    recipient_device: str,
    recipient_key: EncryptionKey,
) -> dict[str, Any]:
    """Verify and decrypt `envelope` for `recipient_device`; return the content object."""
    check_envelope(envelope, sender_signing_key)
    content_key = unwrap_content_key(
        envelope, recipient_device=recipient_device, recipient_key=recipient_key
    )
    return decrypt_content(envelope, content_key)


def unwrap_content_key(
    envelope: Envelope, *, recipient_device: str, recipient_key: EncryptionKey
) -> bytes:
    """The content key, unwrapped from this device's key wrap (HPKE).

    Checks neither the signature (`check_envelope`) nor the key commitment
    (`decrypt_content`). A member reveals this key to prove one message in a
    verifiable excerpt. Raises `VerificationError`.
    """
    wrap = envelope.wraps.get(recipient_device)
    if wrap is None:
        raise VerificationError("this device is not a recipient of the message")
    suite = _SUITES[envelope.header.suite]
    try:
        return suite.decrypt(
            b64d(wrap),
            recipient_key.hpke_private(),
            info=wrap_info(envelope.header, envelope.header_hash(), recipient_device),
        )
    except (InvalidTag, ValueError, ProtocolError) as exc:
        raise VerificationError("cannot unwrap the content key for this device") from exc


def decrypt_content(envelope: Envelope, content_key: bytes) -> dict[str, Any]:
    """Decrypt with a content key already in hand; return the content object.

    Checks the key against the header's commitment first, so a revealed key
    (a verifiable excerpt) opens this message and proves it is the one the
    sender committed to. It does not check the signature: `check_envelope`
    does. Raises `VerificationError`.
    """
    header = envelope.header
    if len(content_key) != CONTENT_KEY_LEN:
        raise VerificationError("content key has the wrong length")
    if not secrets.compare_digest(
        b64e(key_commitment(content_key, header.message_id)), header.key_commitment
    ):
        raise VerificationError("content key does not match the header's commitment")
    try:
        padded = ChaCha20Poly1305(content_key).decrypt(
            _ZERO_NONCE, b64d(envelope.ciphertext), _aad(header)
        )
    except (InvalidTag, ProtocolError) as exc:
        raise VerificationError("ciphertext fails authentication") from exc
    try:
        return parse_json_object(unpad(padded))
    except ProtocolError as exc:
        raise VerificationError(f"decrypted content is not a JSON object: {exc}") from exc
