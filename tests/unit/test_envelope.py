"""The message envelope (docs/design.md §5): sealing, opening, and rejection of every tampering.

Most tamper tests run three times through the `resign` fixture: with the
original signature, re-signed by an attacker's key, and re-signed by the
sender's own key. The last case stands for an equivocating sender (or a
signature check that was skipped): it shows that each check below the
signature holds on its own.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st

from client_sdk.protocol.encoding import b64d, b64e, canonical_json, sha256
from client_sdk.protocol.envelope import (
    CONTENT_KEY_LEN,
    MIN_BUCKET,
    SUITE_XWING,
    CheckpointRef,
    Envelope,
    Header,
    Recipient,
    check_envelope,
    key_commitment,
    open_envelope,
    pad,
    parse_envelope,
    seal_envelope,
    unpad,
    wrap_info,
)
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import EncryptionKey, SigLabel, SigningKey, hpke_public_key

# The suite SUITE_XWING names (RFC 9180 ids), built here so forgeries do not use private code.
XWING = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)

CONTENT: dict[str, Any] = {
    "type": "text",
    "body": "Four detainees on Tuesday, at the northern crossing.",
}
ROOM_ID = "room-1"
CHANNEL = "plenary"
ROSTER_VERSION = 3
SENT_AT = 1_760_000_000_000
CHECKPOINT = CheckpointRef(size=7, root=b64e(sha256(b"root of size 7")))

SENDER = "mediator-laptop"
ALICE = "alice-phone"
BOB = "bob-laptop"
CAROL = "carol-phone"
MALLORY = "mallory-phone"


@dataclass(frozen=True, slots=True)
class Device:
    """A device with both of its private keys."""

    device_id: str
    signing_key: SigningKey
    encryption_key: EncryptionKey

    @property
    def recipient(self) -> Recipient:
        return Recipient(self.device_id, self.encryption_key.public_bytes())

    def open(self, envelope: Envelope, *, sender: Device) -> dict[str, Any]:
        return open_envelope(
            envelope,
            sender_signing_key=sender.signing_key.public_bytes(),
            recipient_device=self.device_id,
            recipient_key=self.encryption_key,
        )


def make_device(device_id: str) -> Device:
    return Device(device_id, SigningKey.generate(), EncryptionKey.generate())


@pytest.fixture(scope="module")
def sender() -> Device:
    return make_device(SENDER)


@pytest.fixture(scope="module")
def alice() -> Device:
    return make_device(ALICE)


@pytest.fixture(scope="module")
def bob() -> Device:
    return make_device(BOB)


@pytest.fixture(scope="module")
def carol() -> Device:
    return make_device(CAROL)


@pytest.fixture(scope="module")
def mallory() -> Device:
    """Not a recipient; holds her own keys only."""
    return make_device(MALLORY)


@pytest.fixture
def recipients(alice: Device, bob: Device, carol: Device) -> list[Device]:
    return [alice, bob, carol]


def make_envelope(
    sender: Device,
    recipients: Sequence[Device],
    *,
    content: Mapping[str, Any] = CONTENT,
    room_id: str = ROOM_ID,
    channel: str = CHANNEL,
    roster_version: int = ROSTER_VERSION,
    message_id: str | None = None,
    sent_at: int = SENT_AT,
    checkpoint: CheckpointRef | None = CHECKPOINT,
) -> Envelope:
    return seal_envelope(
        content=dict(content),
        room_id=room_id,
        channel=channel,
        roster_version=roster_version,
        sender_device=sender.device_id,
        sender_key=sender.signing_key,
        recipients=[r.recipient for r in recipients],
        sent_at=sent_at,
        message_id=message_id,
        checkpoint=checkpoint,
    )


@pytest.fixture
def envelope(sender: Device, recipients: list[Device]) -> Envelope:
    return make_envelope(sender, recipients)


# --- tampering helpers -------------------------------------------------------


def resigned(envelope: Envelope, key: SigningKey) -> Envelope:
    signature = key.sign(SigLabel.ENVELOPE, envelope.signed_bytes())
    return envelope.model_copy(update={"signature": b64e(signature)})


def with_header(envelope: Envelope, **changes: Any) -> Envelope:
    header = Header.model_validate({**envelope.header.model_dump(mode="json"), **changes})
    return envelope.model_copy(update={"header": header})


def with_wraps(envelope: Envelope, wraps: dict[str, str]) -> Envelope:
    return envelope.model_copy(update={"wraps": wraps})


def flip_bit(text: str, *, index: int = 0) -> str:
    data = bytearray(b64d(text))
    data[index] ^= 0x01
    return b64e(bytes(data))


def header_hash(header: Header) -> bytes:
    return sha256(canonical_json(header.model_dump(mode="json")))


def wrap_for(device: Device, content_key: bytes, header: Header) -> str:
    info = wrap_info(header, header_hash(header), device.device_id)
    encryption_key = hpke_public_key(device.encryption_key.public_bytes())
    return b64e(XWING.encrypt(content_key, encryption_key, info=info))


def content_aad(header: Header) -> bytes:
    # Mirrors the envelope module: the header without its ciphertext hash, label-prefixed.
    # test_forged_envelope_with_honest_parts_opens keeps this in step with the code.
    body = header.model_dump(mode="json")
    del body["ciphertext_sha256"]
    return b"parley/v1/content\x00" + canonical_json(body)


def forge(
    template: Envelope,
    devices: Sequence[Device],
    *,
    signer: SigningKey,
    content_key: bytes | None = None,
    commitment: str | None = None,
    wrapped_keys: Mapping[str, bytes] | None = None,
    padded: bytes | None = None,
    flip_ciphertext: bool = False,
    **header_changes: Any,
) -> Envelope:
    """Build an envelope from its parts, as someone holding `signer` could, with chosen flaws.

    Header fields come from `template` (overridden by `header_changes`), the
    recipients from `devices`. `padded` (default: the padded `CONTENT`) is
    sealed under `content_key`; the header commits to `commitment` (default:
    the commitment to `content_key`); each device's wrap holds
    `wrapped_keys[device_id]` (default: `content_key`).
    """
    content_key = content_key if content_key is not None else os.urandom(CONTENT_KEY_LEN)
    fields = {**template.header.model_dump(mode="json"), **header_changes}
    fields["recipients"] = sorted(d.device_id for d in devices)
    fields["key_commitment"] = commitment or b64e(key_commitment(content_key, fields["message_id"]))
    fields["ciphertext_sha256"] = ""
    header = Header.model_validate(fields)
    plaintext = padded if padded is not None else pad(canonical_json(CONTENT))
    ciphertext = ChaCha20Poly1305(content_key).encrypt(bytes(12), plaintext, content_aad(header))
    if flip_ciphertext:
        ciphertext = bytes([ciphertext[0] ^ 0x01]) + ciphertext[1:]
    header = header.model_copy(update={"ciphertext_sha256": b64e(sha256(ciphertext))})
    keys = wrapped_keys or {}
    wraps = {d.device_id: wrap_for(d, keys.get(d.device_id, content_key), header) for d in devices}
    unsigned = Envelope(header=header, ciphertext=b64e(ciphertext), wraps=wraps, signature="")
    return resigned(unsigned, signer)


def assert_every_recipient_rejects(
    envelope: Envelope, *, sender: Device, recipients: Sequence[Device]
) -> None:
    for device in recipients:
        with pytest.raises(VerificationError):
            device.open(envelope, sender=sender)


Resign = Callable[[Envelope], Envelope]


@pytest.fixture(params=["original-signature", "attacker-signature", "sender-signature"])
def resign(request: pytest.FixtureRequest, sender: Device, mallory: Device) -> Resign:
    """How the tampered envelope is signed; every variant must be rejected."""
    if request.param == "attacker-signature":
        return lambda envelope: resigned(envelope, mallory.signing_key)
    if request.param == "sender-signature":
        return lambda envelope: resigned(envelope, sender.signing_key)
    return lambda envelope: envelope


# --- round trip ----------------------------------------------------------------


def test_every_recipient_decrypts_the_same_content(
    envelope: Envelope, sender: Device, recipients: list[Device]
) -> None:
    assert [r.open(envelope, sender=sender) for r in recipients] == [CONTENT] * len(recipients)


def test_single_recipient_round_trip(sender: Device, alice: Device) -> None:
    envelope = make_envelope(sender, [alice], content={"n": 1})

    assert alice.open(envelope, sender=sender) == {"n": 1}


def test_header_records_what_was_sealed(envelope: Envelope) -> None:
    header = envelope.header

    assert (header.room_id, header.channel, header.roster_version) == (
        ROOM_ID,
        CHANNEL,
        ROSTER_VERSION,
    )
    assert (header.sender_device, header.sent_at, header.checkpoint) == (
        SENDER,
        SENT_AT,
        CHECKPOINT,
    )
    assert header.suite == SUITE_XWING
    assert header.ciphertext_sha256 == b64e(sha256(b64d(envelope.ciphertext)))


def test_header_lists_recipients_sorted(sender: Device, alice: Device, bob: Device) -> None:
    envelope = make_envelope(sender, [bob, alice])

    assert envelope.header.recipients == [ALICE, BOB]
    assert sorted(envelope.wraps) == [ALICE, BOB]


def test_explicit_message_id_is_kept(sender: Device, alice: Device) -> None:
    envelope = make_envelope(sender, [alice], message_id="msg-42")

    assert envelope.header.message_id == "msg-42"


def test_each_message_gets_a_fresh_content_key(sender: Device, alice: Device) -> None:
    first = make_envelope(sender, [alice], message_id="msg-1")
    second = make_envelope(sender, [alice], message_id="msg-1")

    assert first.header.key_commitment != second.header.key_commitment
    assert first.ciphertext != second.ciphertext


def test_sealing_without_recipients_is_refused(sender: Device) -> None:
    with pytest.raises(ProtocolError):
        make_envelope(sender, [])


def test_honest_envelope_passes_public_checks(envelope: Envelope, sender: Device) -> None:
    check_envelope(envelope, sender.signing_key.public_bytes())


def test_wire_form_parses_back_and_opens(envelope: Envelope, sender: Device, alice: Device) -> None:
    parsed = parse_envelope(envelope.model_dump(mode="json"))

    assert parsed == envelope
    assert alice.open(parsed, sender=sender) == CONTENT


# --- header tampering ------------------------------------------------------------

HEADER_CHANGES = [
    pytest.param({"room_id": "room-2"}, id="room_id"),
    pytest.param({"channel": "caucus-a"}, id="channel"),
    pytest.param({"roster_version": ROSTER_VERSION + 1}, id="roster_version"),
    pytest.param({"message_id": "another-message"}, id="message_id"),
    pytest.param({"recipients": [ALICE, BOB]}, id="recipients-removed"),
    pytest.param({"recipients": [ALICE, BOB, CAROL, MALLORY]}, id="recipients-added"),
    pytest.param({"recipients": [ALICE, BOB, MALLORY]}, id="recipients-replaced"),
    pytest.param({"recipients": [ALICE, BOB, CAROL, CAROL]}, id="recipients-duplicated"),
    pytest.param({"sent_at": SENT_AT + 1}, id="sent_at"),
    pytest.param({"checkpoint": {"size": 8, "root": CHECKPOINT.root}}, id="checkpoint-size"),
    pytest.param(
        {"checkpoint": {"size": 7, "root": b64e(sha256(b"forked root"))}}, id="checkpoint-root"
    ),
    pytest.param({"checkpoint": None}, id="checkpoint-dropped"),
    pytest.param({"key_commitment": b64e(sha256(b"other key"))}, id="key_commitment"),
    pytest.param({"ciphertext_sha256": b64e(sha256(b"other"))}, id="ciphertext_sha256"),
]


@pytest.mark.parametrize("changes", HEADER_CHANGES)
def test_changed_header_field_is_rejected(
    changes: dict[str, Any],
    resign: Resign,
    envelope: Envelope,
    sender: Device,
    recipients: list[Device],
) -> None:
    tampered = resign(with_header(envelope, **changes))

    assert_every_recipient_rejects(tampered, sender=sender, recipients=recipients)


@pytest.mark.parametrize("changes", HEADER_CHANGES)
def test_changed_header_field_fails_public_checks_unless_resigned_by_sender(
    changes: dict[str, Any], envelope: Envelope, sender: Device, mallory: Device
) -> None:
    for tampered in (
        with_header(envelope, **changes),
        resigned(with_header(envelope, **changes), mallory.signing_key),
    ):
        with pytest.raises(VerificationError):
            check_envelope(tampered, sender.signing_key.public_bytes())


# --- ciphertext, wraps, signature -------------------------------------------------


@pytest.mark.parametrize("index", [0, -1], ids=["first-byte", "last-byte"])
def test_ciphertext_bit_flip_is_rejected(
    index: int, resign: Resign, envelope: Envelope, sender: Device, recipients: list[Device]
) -> None:
    tampered = resign(
        envelope.model_copy(update={"ciphertext": flip_bit(envelope.ciphertext, index=index)})
    )

    assert_every_recipient_rejects(tampered, sender=sender, recipients=recipients)


@pytest.mark.parametrize("index", [0, -1], ids=["kem-encapsulation", "aead-tag"])
def test_wrap_bit_flip_is_rejected(
    index: int, resign: Resign, envelope: Envelope, sender: Device, bob: Device
) -> None:
    wraps = {**envelope.wraps, BOB: flip_bit(envelope.wraps[BOB], index=index)}
    tampered = resign(with_wraps(envelope, wraps))

    with pytest.raises(VerificationError):
        bob.open(tampered, sender=sender)


def test_wrap_moved_to_another_device_is_rejected(
    resign: Resign, envelope: Envelope, sender: Device, bob: Device
) -> None:
    tampered = resign(with_wraps(envelope, {**envelope.wraps, BOB: envelope.wraps[ALICE]}))

    with pytest.raises(VerificationError):
        bob.open(tampered, sender=sender)


def test_wraps_swapped_between_devices_are_rejected(
    resign: Resign, envelope: Envelope, sender: Device, alice: Device, bob: Device
) -> None:
    wraps = {**envelope.wraps, ALICE: envelope.wraps[BOB], BOB: envelope.wraps[ALICE]}
    tampered = resign(with_wraps(envelope, wraps))

    assert_every_recipient_rejects(tampered, sender=sender, recipients=[alice, bob])


def test_removed_wrap_is_rejected(
    resign: Resign, envelope: Envelope, sender: Device, recipients: list[Device]
) -> None:
    wraps = {device: wrap for device, wrap in envelope.wraps.items() if device != CAROL}
    tampered = resign(with_wraps(envelope, wraps))

    assert_every_recipient_rejects(tampered, sender=sender, recipients=recipients)


def test_added_wrap_is_rejected(
    resign: Resign, envelope: Envelope, sender: Device, recipients: list[Device], mallory: Device
) -> None:
    extra = wrap_for(mallory, os.urandom(CONTENT_KEY_LEN), envelope.header)
    tampered = resign(with_wraps(envelope, {**envelope.wraps, MALLORY: extra}))

    assert_every_recipient_rejects(tampered, sender=sender, recipients=[*recipients, mallory])


@pytest.mark.parametrize("index", [0, 31, 63])
def test_signature_bit_flip_is_rejected(
    index: int, envelope: Envelope, sender: Device, recipients: list[Device]
) -> None:
    tampered = envelope.model_copy(update={"signature": flip_bit(envelope.signature, index=index)})

    assert_every_recipient_rejects(tampered, sender=sender, recipients=recipients)


def test_signature_by_another_key_is_rejected(
    envelope: Envelope, sender: Device, mallory: Device, recipients: list[Device]
) -> None:
    tampered = resigned(envelope, mallory.signing_key)

    assert_every_recipient_rejects(tampered, sender=sender, recipients=recipients)


def test_envelope_checked_against_another_sender_key_is_rejected(
    envelope: Envelope, mallory: Device, alice: Device
) -> None:
    with pytest.raises(VerificationError, match="signature"):
        alice.open(envelope, sender=mallory)


@pytest.mark.parametrize("label", [label for label in SigLabel if label != SigLabel.ENVELOPE])
def test_sender_signature_under_another_label_is_rejected(
    label: SigLabel, envelope: Envelope, sender: Device, alice: Device
) -> None:
    signature = sender.signing_key.sign(label, envelope.signed_bytes())
    tampered = envelope.model_copy(update={"signature": b64e(signature)})

    with pytest.raises(VerificationError, match="signature"):
        alice.open(tampered, sender=sender)


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("", id="empty"),
        pytest.param(b64e(bytes(63)), id="truncated"),
        pytest.param(b64e(bytes(65)), id="too-long"),
        pytest.param("A" * 85, id="length-mod-4-is-1"),
        pytest.param("A" * 85 + "B", id="non-canonical-trailing-bits"),
    ],
)
def test_malformed_signature_is_rejected(
    signature: str, envelope: Envelope, sender: Device
) -> None:
    tampered = envelope.model_copy(update={"signature": signature})

    with pytest.raises(VerificationError):
        check_envelope(tampered, sender.signing_key.public_bytes())


# --- who can open ------------------------------------------------------------------


def test_non_recipient_device_cannot_open(
    envelope: Envelope, sender: Device, mallory: Device
) -> None:
    with pytest.raises(VerificationError, match="not a recipient"):
        mallory.open(envelope, sender=sender)


def test_wrong_private_key_cannot_unwrap(
    envelope: Envelope, sender: Device, mallory: Device
) -> None:
    impostor = Device(BOB, mallory.signing_key, mallory.encryption_key)

    with pytest.raises(VerificationError, match="cannot unwrap"):
        impostor.open(envelope, sender=sender)


# --- content key and commitment ------------------------------------------------------


def test_forged_envelope_with_honest_parts_opens(
    envelope: Envelope, sender: Device, recipients: list[Device]
) -> None:
    """Control for `forge`: without a flaw its envelopes open, so the tests below fail for
    the flaw they introduce and nothing else."""
    forged = forge(envelope, recipients, signer=sender.signing_key)

    assert [r.open(forged, sender=sender) for r in recipients] == [CONTENT] * len(recipients)


@pytest.mark.parametrize(
    ("signer_name", "reason"),
    [("sender", "commitment"), ("mallory", "signature")],
)
def test_content_key_swapped_under_the_original_commitment_is_rejected(
    signer_name: str,
    reason: str,
    envelope: Envelope,
    sender: Device,
    mallory: Device,
    recipients: list[Device],
) -> None:
    """Re-encrypting under a new content key (new ciphertext, hash and wraps) while keeping
    the header's commitment to the old key is caught."""
    signer = {"sender": sender, "mallory": mallory}[signer_name].signing_key
    swapped = forge(envelope, recipients, signer=signer, commitment=envelope.header.key_commitment)

    for device in recipients:
        with pytest.raises(VerificationError, match=reason):
            device.open(swapped, sender=sender)


@pytest.mark.parametrize(
    ("signer_name", "reason"),
    [("sender", "commitment"), ("mallory", "signature")],
)
def test_recipient_wrapped_a_key_other_than_the_committed_one_is_rejected(
    signer_name: str,
    reason: str,
    envelope: Envelope,
    sender: Device,
    mallory: Device,
    recipients: list[Device],
    bob: Device,
) -> None:
    """Someone who can read the message (it knows the content key) re-wraps a different
    key to Bob, hoping to show him other content under the same header."""
    signer = {"sender": sender, "mallory": mallory}[signer_name].signing_key
    other_key = os.urandom(CONTENT_KEY_LEN)
    equivocating = forge(envelope, recipients, signer=signer, wrapped_keys={BOB: other_key})

    with pytest.raises(VerificationError, match=reason):
        bob.open(equivocating, sender=sender)


def test_ciphertext_that_fails_authentication_is_rejected(
    envelope: Envelope, sender: Device, alice: Device
) -> None:
    """Even with a matching hash, signature and key, a modified ciphertext fails the AEAD."""
    forged = forge(envelope, [alice], signer=sender.signing_key, flip_ciphertext=True)

    with pytest.raises(VerificationError, match="authentication"):
        alice.open(forged, sender=sender)


def test_ciphertext_sealed_under_another_header_is_rejected(
    envelope: Envelope, sender: Device, alice: Device
) -> None:
    """The header is the AEAD's associated data: a ciphertext cannot move to another header."""
    content_key = os.urandom(CONTENT_KEY_LEN)
    original = forge(envelope, [alice], signer=sender.signing_key, content_key=content_key)
    other = forge(
        envelope,
        [alice],
        signer=sender.signing_key,
        content_key=content_key,
        channel="caucus-a",
    )
    header = other.header.model_copy(
        update={"ciphertext_sha256": original.header.ciphertext_sha256}
    )
    wraps = {ALICE: wrap_for(alice, content_key, header)}
    unsigned = Envelope(header=header, ciphertext=original.ciphertext, wraps=wraps, signature="")
    moved = resigned(unsigned, sender.signing_key)

    with pytest.raises(VerificationError, match="authentication"):
        alice.open(moved, sender=sender)


@pytest.mark.parametrize(
    "padded",
    [
        pytest.param(pad(b"[1, 2]"), id="json-array"),
        pytest.param(pad(b"not json"), id="not-json"),
        pytest.param(pad(b"{}")[:-1] + b"\x01", id="nonzero-padding"),
        pytest.param((1000).to_bytes(4, "big") + bytes(252), id="length-beyond-buffer"),
    ],
)
def test_malformed_plaintext_is_rejected(
    padded: bytes, envelope: Envelope, sender: Device, alice: Device
) -> None:
    forged = forge(envelope, [alice], signer=sender.signing_key, padded=padded)

    with pytest.raises(VerificationError):
        alice.open(forged, sender=sender)


def test_unwrapped_content_key_of_wrong_length_is_rejected(
    envelope: Envelope, sender: Device, alice: Device
) -> None:
    short_key = os.urandom(16)
    forged = forge(
        envelope,
        [alice],
        signer=sender.signing_key,
        commitment=b64e(key_commitment(short_key, envelope.header.message_id)),
        wrapped_keys={ALICE: short_key},
    )

    with pytest.raises(VerificationError):
        alice.open(forged, sender=sender)


# --- HPKE info domain separation ------------------------------------------------------


@pytest.mark.parametrize(
    "other_info",
    [
        pytest.param(
            lambda header, hh: wrap_info(
                header.model_copy(update={"message_id": "msg-Y"}), hh, ALICE
            ),
            id="message_id",
        ),
        pytest.param(
            lambda header, hh: wrap_info(
                header.model_copy(update={"room_id": "room-2"}), hh, ALICE
            ),
            id="room_id",
        ),
        pytest.param(
            lambda header, hh: wrap_info(
                header.model_copy(update={"sender_device": MALLORY}), hh, ALICE
            ),
            id="sender_device",
        ),
        pytest.param(lambda header, hh: wrap_info(header, hh, BOB), id="recipient_device"),
        pytest.param(
            lambda header, hh: wrap_info(header, sha256(b"other header"), ALICE),
            id="header_hash",
        ),
    ],
)
def test_wrap_does_not_open_under_info_for_another_binding(
    other_info: Callable[[Header, bytes], bytes], envelope: Envelope, alice: Device
) -> None:
    header = envelope.header
    info = wrap_info(header, header_hash(header), ALICE)
    wrap = XWING.encrypt(b"k" * 32, hpke_public_key(alice.encryption_key.public_bytes()), info=info)

    with pytest.raises(InvalidTag):
        XWING.decrypt(
            wrap, alice.encryption_key.hpke_private(), info=other_info(header, header_hash(header))
        )


def test_wrap_info_starts_with_its_domain_label(envelope: Envelope) -> None:
    info = wrap_info(envelope.header, header_hash(envelope.header), ALICE)

    assert info.startswith(b"parley/v1/wrap\x00")


def test_wrap_made_for_one_message_id_does_not_open_under_another(
    envelope: Envelope, sender: Device, alice: Device
) -> None:
    """Same content key, valid sender signature: only the HPKE info stops the transplant."""
    content_key = os.urandom(CONTENT_KEY_LEN)
    message_x = forge(
        envelope,
        [alice],
        signer=sender.signing_key,
        content_key=content_key,
        message_id="msg-X",
    )
    message_y = forge(
        envelope,
        [alice],
        signer=sender.signing_key,
        content_key=content_key,
        message_id="msg-Y",
    )
    transplanted = resigned(with_wraps(message_y, message_x.wraps), sender.signing_key)

    with pytest.raises(VerificationError, match="cannot unwrap"):
        alice.open(transplanted, sender=sender)


# --- padding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "bucket"),
    [(0, 256), (252, 256), (253, 512), (508, 512), (509, 1024), (4092, 4096), (4093, 8192)],
)
def test_pad_fills_the_smallest_power_of_two_bucket(length: int, bucket: int) -> None:
    assert len(pad(b"x" * length)) == bucket


@given(st.binary(max_size=3000))
def test_padded_size_is_a_power_of_two_of_at_least_min_bucket(plaintext: bytes) -> None:
    size = len(pad(plaintext))

    assert size >= MIN_BUCKET == 256
    assert size & (size - 1) == 0


@given(st.binary(max_size=3000))
def test_unpad_reverses_pad(plaintext: bytes) -> None:
    assert unpad(pad(plaintext)) == plaintext


@pytest.mark.parametrize(
    ("short", "long"),
    [(0, 244), (245, 500), (501, 1012)],
    ids=["bucket-256", "bucket-512", "bucket-1024"],
)
def test_padding_hides_length_within_a_bucket(
    short: int, long: int, sender: Device, alice: Device
) -> None:
    # canonical {"t":"..."} is 8 bytes plus the string: `long` just fills its bucket.
    small = make_envelope(sender, [alice], content={"t": "x" * short})
    large = make_envelope(sender, [alice], content={"t": "x" * long})

    assert len(b64d(small.ciphertext)) == len(b64d(large.ciphertext))


def test_lengths_in_different_buckets_are_distinguishable(sender: Device, alice: Device) -> None:
    full = make_envelope(sender, [alice], content={"t": "x" * 244})
    over = make_envelope(sender, [alice], content={"t": "x" * 245})

    tag = 16
    assert (len(b64d(full.ciphertext)), len(b64d(over.ciphertext))) == (256 + tag, 512 + tag)


@pytest.mark.parametrize("position", [-1, 4 + 3, 128])
def test_unpad_rejects_nonzero_padding(position: int) -> None:
    padded = bytearray(pad(b"abc"))
    padded[position] = 1

    with pytest.raises(VerificationError, match="padding"):
        unpad(bytes(padded))


@pytest.mark.parametrize(
    "padded",
    [
        pytest.param((253).to_bytes(4, "big") + bytes(252), id="one-past-the-end"),
        pytest.param(b"\xff\xff\xff\xff" + bytes(252), id="huge"),
        pytest.param((1).to_bytes(4, "big"), id="prefix-only"),
    ],
)
def test_unpad_rejects_length_beyond_the_buffer(padded: bytes) -> None:
    with pytest.raises(VerificationError):
        unpad(padded)


@pytest.mark.parametrize("padded", [b"", b"\x00\x00\x00"])
def test_unpad_rejects_input_shorter_than_the_length_prefix(padded: bytes) -> None:
    with pytest.raises(VerificationError, match="too short"):
        unpad(padded)


# --- parsing the wire form ---------------------------------------------------------------


@pytest.fixture
def wire(envelope: Envelope) -> dict[str, Any]:
    return envelope.model_dump(mode="json")


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    *parents, leaf = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    target[leaf] = value
    return changed


def del_path(data: dict[str, Any], path: str) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    *parents, leaf = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    del target[leaf]
    return changed


@pytest.mark.parametrize("path", ["extra", "header.extra", "header.checkpoint.extra"])
def test_parse_rejects_unknown_field(path: str, wire: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_envelope(set_path(wire, path, 1))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("header.roster_version", "1", id="roster_version-string"),
        pytest.param("header.roster_version", 1.0, id="roster_version-float"),
        pytest.param("header.roster_version", True, id="roster_version-bool"),
        pytest.param("header.roster_version", 0, id="roster_version-zero"),
        pytest.param("header.sent_at", "1760000000000", id="sent_at-string"),
        pytest.param("header.v", 2, id="v-unknown"),
        pytest.param("header.v", "1", id="v-string"),
        pytest.param("header.suite", "hpke-x25519-hkdfsha256-aes128gcm", id="suite-unknown"),
        pytest.param("header.auth", "none", id="auth-unknown"),
        pytest.param("header.room_id", 1, id="room_id-int"),
        pytest.param("header.room_id", "room 1", id="room_id-space"),
        pytest.param("header.room_id", "", id="room_id-empty"),
        pytest.param("header.room_id", "r" * 65, id="room_id-too-long"),
        pytest.param("header.recipients", ALICE, id="recipients-string"),
        pytest.param("header.recipients", [], id="recipients-empty"),
        pytest.param("header.recipients", [ALICE, 7], id="recipients-int"),
        pytest.param("header.checkpoint", "7", id="checkpoint-string"),
        pytest.param("header.checkpoint.size", "7", id="checkpoint-size-string"),
        pytest.param("header.checkpoint.size", -1, id="checkpoint-size-negative"),
        pytest.param("header", [], id="header-list"),
        pytest.param("wraps", [], id="wraps-list"),
        pytest.param("wraps", {ALICE: 1}, id="wrap-int"),
        pytest.param("wraps", {"alice phone": "AAAA"}, id="wrap-device-id-space"),
        pytest.param("ciphertext", 123, id="ciphertext-int"),
        pytest.param("signature", None, id="signature-null"),
    ],
)
def test_parse_rejects_wrong_type_or_value(path: str, value: Any, wire: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_envelope(set_path(wire, path, value))


@pytest.mark.parametrize("value", [True, 1.0], ids=["bool", "float"])
def test_parse_rejects_non_integer_version(value: Any, wire: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_envelope(set_path(wire, "header.v", value))


@pytest.mark.parametrize(
    "path",
    [
        "ciphertext",
        "signature",
        "header.key_commitment",
        "header.ciphertext_sha256",
        "header.checkpoint.root",
        f"wraps.{ALICE}",
    ],
)
@pytest.mark.parametrize("bad", ["ab+c", "ab/c", "abc=", "ab c", "abc\n", "abé"])
def test_parse_rejects_characters_outside_base64url(
    path: str, bad: str, wire: dict[str, Any]
) -> None:
    with pytest.raises(ProtocolError):
        parse_envelope(set_path(wire, path, bad))


@pytest.mark.parametrize(
    "path",
    ["header", "ciphertext", "wraps", "signature"]
    + [f"header.{name}" for name in Header.model_fields]
    + ["header.checkpoint.size", "header.checkpoint.root"],
)
def test_parse_rejects_missing_field(path: str, wire: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_envelope(del_path(wire, path))


def test_header_integer_beyond_json_range_is_rejected_at_parse_or_check(
    wire: dict[str, Any], sender: Device
) -> None:
    try:
        parsed = parse_envelope(set_path(wire, "header.sent_at", 2**60))
    except ProtocolError:
        return  # rejected at the edge: fine
    with pytest.raises(VerificationError):
        check_envelope(parsed, sender.signing_key.public_bytes())
