"""Key types and domain-separated Ed25519 signatures.

Every signature in Parley is over ``"parley/v1/sig\\x00" || label || "\\x00" || data``,
so a signature made for one purpose (a roster, a login challenge, an
envelope) can never be replayed as another. Labels are the `SigLabel` values.

Encryption keys are the hybrid post-quantum KEM X-Wing (ML-KEM-768 + X25519,
draft-connolly-cfrg-xwing-kem; HPKE KEM ``MLKEM768-X25519``). The private key
is the draft's 32-byte seed; its parts are derived as the draft's
``expandDecapsulationKey`` says: ``SHAKE256(seed, 96 bytes)``, the first 64
bytes the ML-KEM-768 key generation seed ``d || z`` (FIPS 203), the last 32 the
X25519 private key. The public key travels as ``mlkem768_public (1,184 bytes)
|| x25519_public (32)``, the draft's encoding. `cryptography` does the KEMs,
SHAKE256 and HPKE; the draft's test vectors pin the derivation
(``tests/vectors/xwing/``).

Keys made before keys were seeds hold their two parts, drawn independently
(``mlkem768 d || z (64) || x25519_private (32)``), which no seed expands to:
they stay usable to open what was sealed to them, are told apart by their
length, and are replaced by a seed key at the next rotation
(`EncryptionKey.legacy`).
"""

from __future__ import annotations

import enum
import functools
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

from client_sdk.protocol.encoding import b64e, sha256
from client_sdk.protocol.errors import ProtocolError, VerificationError

SIGNATURE_PREFIX = b"parley/v1/sig\x00"
MLKEM768_PUBLIC_LEN = 1184
MLKEM768_SEED_LEN = 64
X25519_LEN = 32
XWING_SEED_LEN = 32
ENCRYPTION_PUBLIC_LEN = MLKEM768_PUBLIC_LEN + X25519_LEN
LEGACY_PRIVATE_LEN = MLKEM768_SEED_LEN + X25519_LEN
"""A key from before seeds: ML-KEM-768 ``d || z`` and an X25519 key, drawn independently."""


class SigLabel(enum.StrEnum):
    """The purposes a device or account key signs for; one label each."""

    REGISTRATION = "registration"
    DEVICE_CERT = "device-cert"
    ENCRYPTION_KEY_CERT = "encryption-key-cert"
    LOGIN = "login"
    ROSTER = "roster"
    MODERATION = "moderation"
    INSTRUMENT = "instrument"
    ENVELOPE = "envelope"
    EVENT = "event"
    REVOCATION = "revocation"
    DEVICE_LINK = "device-link"


def _signed_bytes(label: SigLabel, data: bytes) -> bytes:
    return SIGNATURE_PREFIX + label.value.encode("ascii") + b"\x00" + data


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key that signs only with a purpose label."""

    private: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """Draw a new key from the OS random source."""
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> SigningKey:
        """Load a 32-byte raw private key."""
        if len(raw) != 32:
            raise ProtocolError("an Ed25519 private key is 32 bytes")
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key (for the encrypted keystore only)."""
        return self.private.private_bytes_raw()

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private.public_key().public_bytes_raw()

    def sign(self, label: SigLabel, data: bytes) -> bytes:
        """Sign `data` for the purpose `label`."""
        return self.private.sign(_signed_bytes(label, data))


@functools.lru_cache(maxsize=4096)
def _public_key(public_key: bytes) -> ed25519.Ed25519PublicKey:
    # Loading a key costs about a tenth of a verification; audits check many per key.
    return ed25519.Ed25519PublicKey.from_public_bytes(public_key)


def verify_signature(public_key: bytes, label: SigLabel, data: bytes, signature: bytes) -> None:
    """Check an Ed25519 signature made with `SigningKey.sign`; raise `VerificationError`."""
    if len(public_key) != 32:
        raise VerificationError("an Ed25519 public key is 32 bytes")
    if len(signature) != 64:
        raise VerificationError(f"bad {label.value} signature: wrong length")
    try:
        _public_key(public_key).verify(signature, _signed_bytes(label, data))
    except (InvalidSignature, ValueError) as exc:
        raise VerificationError(f"bad {label.value} signature") from exc


def key_id(public_key: bytes) -> str:
    """A short stable identifier of a public key: base64url of its SHA-256's first 16 bytes."""
    return b64e(sha256(public_key)[:16])


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    """An X-Wing (ML-KEM-768 + X25519) HPKE private key: a 32-byte seed and its expansion.

    `seed` is None for a legacy key (made before keys were seeds), which holds
    only the two expanded parts.
    """

    seed: bytes | None
    mlkem_seed: bytes
    """ML-KEM-768's key generation seed ``d || z`` (64 bytes, FIPS 203)."""
    x25519_private: bytes

    @classmethod
    def generate(cls) -> EncryptionKey:
        """Draw a new seed from the OS random source."""
        return cls.from_seed(secrets.token_bytes(XWING_SEED_LEN))

    @classmethod
    def from_seed(cls, seed: bytes) -> EncryptionKey:
        """The key of a 32-byte X-Wing seed (the draft's ``expandDecapsulationKey``)."""
        if len(seed) != XWING_SEED_LEN:
            raise ProtocolError(f"an X-Wing seed is {XWING_SEED_LEN} bytes")
        shake = hashes.Hash(hashes.SHAKE256(MLKEM768_SEED_LEN + X25519_LEN))
        shake.update(seed)
        expanded = shake.finalize()
        return cls(seed, expanded[:MLKEM768_SEED_LEN], expanded[MLKEM768_SEED_LEN:])

    @classmethod
    def from_bytes(cls, raw: bytes) -> EncryptionKey:
        """Load a stored key: a 32-byte seed, or a legacy key's 96 bytes."""
        if len(raw) == XWING_SEED_LEN:
            return cls.from_seed(raw)
        if len(raw) == LEGACY_PRIVATE_LEN:
            return cls(None, raw[:MLKEM768_SEED_LEN], raw[MLKEM768_SEED_LEN:])
        raise ProtocolError(
            f"an encryption private key is a {XWING_SEED_LEN}-byte seed "
            f"(or {LEGACY_PRIVATE_LEN} bytes, from before seeds)"
        )

    @property
    def legacy(self) -> bool:
        """Whether the key predates seeds (kept to open old messages; rotated away)."""
        return self.seed is None

    def private_bytes(self) -> bytes:
        """The seed, or a legacy key's ``d || z || x25519_private`` (for the keystore only)."""
        if self.seed is not None:
            return self.seed
        return self.mlkem_seed + self.x25519_private

    def hpke_private(self) -> hpke.MLKEM768X25519PrivateKey:
        """The key as `cryptography`'s HPKE private key object."""
        return hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(self.mlkem_seed),
            x25519.X25519PrivateKey.from_private_bytes(self.x25519_private),
        )

    def public_bytes(self) -> bytes:
        """``mlkem768_public || x25519_public``."""
        mlkem_pub = mlkem.MLKEM768PrivateKey.from_seed_bytes(self.mlkem_seed).public_key()
        x_pub = x25519.X25519PrivateKey.from_private_bytes(self.x25519_private).public_key()
        return mlkem_pub.public_bytes_raw() + x_pub.public_bytes_raw()


def hpke_public_key(raw: bytes) -> hpke.MLKEM768X25519PublicKey:
    """Parse ``mlkem768_public || x25519_public`` into an HPKE public key."""
    if len(raw) != ENCRYPTION_PUBLIC_LEN:
        raise ProtocolError(f"an encryption public key is {ENCRYPTION_PUBLIC_LEN} bytes")
    try:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM768_PUBLIC_LEN]),
            x25519.X25519PublicKey.from_public_bytes(raw[MLKEM768_PUBLIC_LEN:]),
        )
    except ValueError as exc:
        raise ProtocolError("invalid encryption public key") from exc
