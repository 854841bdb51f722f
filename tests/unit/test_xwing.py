"""X-Wing keys as the draft defines them, held to its published vectors (tests/vectors/xwing).

The key is the 32-byte seed; ``SHAKE256(seed, 96)`` gives ML-KEM-768's ``d || z``
and the X25519 private key. The HPKE suite the envelopes use is checked end to
end: with the key of a vector's ``sk``, it must decapsulate the vector's ``ct``
to the vector's ``ss``. `cryptography` exposes no raw X-Wing decapsulation, so
the test seals a message under the RFC 9180 key schedule of ``ss`` (built here
from `cryptography`'s HMAC and HKDF) and the suite must open it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import Recipient, seal_envelope, unwrap_content_key, wrap_info
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.keys import LEGACY_PRIVATE_LEN, EncryptionKey, SigningKey

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "vectors" / "xwing" / "test-vectors.json").read_text()
)
XWING_LABEL = bytes.fromhex("5c2e2f2f5e5c")  # the draft's \.//^\
# RFC 9180 §5.1: "HPKE" || kem_id || kdf_id || aead_id; X-Wing is KEM 0x647a
# (draft-ietf-hpke-pq), HKDF-SHA256 0x0001, ChaCha20-Poly1305 0x0003.
SUITE_ID = b"HPKE" + bytes.fromhex("647a") + bytes.fromhex("0001") + bytes.fromhex("0003")


def _vector_id(vector: dict[str, Any]) -> str:
    return str(vector["sk"])[:8]


def _labeled_extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
    mac = hmac.HMAC(salt or bytes(32), hashes.SHA256())
    mac.update(b"HPKE-v1" + SUITE_ID + label + ikm)
    return mac.finalize()


def _labeled_expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled = length.to_bytes(2, "big") + b"HPKE-v1" + SUITE_ID + label + info
    return HKDFExpand(hashes.SHA256(), length, labeled).derive(prk)


def _seal_under_shared_secret(shared_secret: bytes, info: bytes, plaintext: bytes) -> bytes:
    """RFC 9180 base mode, sequence 0: the AEAD ciphertext a sender with this secret sends."""
    context = (
        b"\x00"
        + _labeled_extract(b"", b"psk_id_hash", b"")
        + _labeled_extract(b"", b"info_hash", info)
    )
    secret = _labeled_extract(shared_secret, b"secret", b"")
    key = _labeled_expand(secret, b"key", context, 32)
    nonce = _labeled_expand(secret, b"base_nonce", context, 12)
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, b"")


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_the_seed_expands_to_the_drafts_public_key(vector: dict[str, Any]) -> None:
    key = EncryptionKey.from_seed(bytes.fromhex(vector["sk"]))
    assert key.public_bytes().hex() == vector["pk"]
    assert key.private_bytes().hex() == vector["sk"]


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_the_expanded_parts_decapsulate_the_drafts_ciphertext(vector: dict[str, Any]) -> None:
    # The draft's Decapsulate, step by step, over cryptography's ML-KEM and X25519.
    key = EncryptionKey.from_seed(bytes.fromhex(vector["sk"]))
    ct = bytes.fromhex(vector["ct"])
    ct_m, ct_x = ct[:1088], ct[1088:]
    ss_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(key.mlkem_seed).decapsulate(ct_m)
    x_key = x25519.X25519PrivateKey.from_private_bytes(key.x25519_private)
    ss_x = x_key.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    pk_x = x_key.public_key().public_bytes_raw()
    combiner = hashes.Hash(hashes.SHA3_256())
    combiner.update(ss_m + ss_x + ct_x + pk_x + XWING_LABEL)
    assert combiner.finalize().hex() == vector["ss"]


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_the_envelope_suite_decapsulates_the_drafts_ciphertext_to_its_shared_secret(
    vector: dict[str, Any],
) -> None:
    # A real envelope whose key wrap for this device is the vector's encapsulation,
    # followed by a content key sealed under the key schedule of the vector's secret.
    key = EncryptionKey.from_seed(bytes.fromhex(vector["sk"]))
    sealed = seal_envelope(
        content={"type": "text", "text": "x"},
        room_id="room-1",
        channel="all",
        roster_version=1,
        sender_device="dev-bob",
        sender_key=SigningKey.generate(),
        recipients=[Recipient("dev-alice", key.public_bytes())],
        sent_at=1,
    )
    content_key = bytes(range(32))
    info = wrap_info(sealed.header, sealed.header_hash(), "dev-alice")
    aead = _seal_under_shared_secret(bytes.fromhex(vector["ss"]), info, content_key)
    wrap = b64e(bytes.fromhex(vector["ct"]) + aead)
    envelope = sealed.model_copy(update={"wraps": {"dev-alice": wrap}})
    found = unwrap_content_key(envelope, recipient_device="dev-alice", recipient_key=key)
    assert found == content_key


def test_a_new_key_is_stored_as_a_32_byte_seed() -> None:
    key = EncryptionKey.generate()
    assert len(key.private_bytes()) == 32
    assert not key.legacy
    assert EncryptionKey.from_bytes(key.private_bytes()) == key


def test_a_key_from_before_seeds_loads_as_a_legacy_key_with_its_bytes_kept() -> None:
    seeded = EncryptionKey.generate()
    legacy = EncryptionKey.from_bytes(seeded.mlkem_seed + seeded.x25519_private)
    assert legacy.legacy
    assert len(legacy.private_bytes()) == LEGACY_PRIVATE_LEN
    assert legacy.public_bytes() == seeded.public_bytes()


@pytest.mark.parametrize("size", [0, 31, 33, 64, 95, 97])
def test_a_stored_key_of_another_length_is_refused(size: int) -> None:
    with pytest.raises(ProtocolError, match="32-byte seed"):
        EncryptionKey.from_bytes(bytes(size))
