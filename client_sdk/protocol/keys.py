"""Key types and domain-separated Ed25519 signatures.

Every signature in Parley is over ``"parley/v1/sig\\x00" || label || "\\x00" || data``,
so a signature made for one purpose (a roster, a login challenge, an
envelope) can never be replayed as another. Labels are the `SigLabel` values.

Encryption keys are the hybrid post-quantum HPKE KEM ML-KEM-768+X25519
(RFC 9180 with X-Wing), kept as their two parts as `cryptography` wants them:
the public key travels as ``mlkem768_public (1,184 bytes) || x25519_public (32)``,
the private key as ``mlkem768_seed (64) || x25519_private (32)``.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

from client_sdk.protocol.encoding import b64e, sha256
from client_sdk.protocol.errors import ProtocolError, VerificationError

SIGNATURE_PREFIX = b"parley/v1/sig\x00"
MLKEM768_PUBLIC_LEN = 1184
MLKEM768_SEED_LEN = 64
X25519_LEN = 32
ENCRYPTION_PUBLIC_LEN = MLKEM768_PUBLIC_LEN + X25519_LEN
ENCRYPTION_PRIVATE_LEN = MLKEM768_SEED_LEN + X25519_LEN


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
    """A hybrid ML-KEM-768+X25519 HPKE private key."""

    mlkem_seed: bytes
    x25519_private: bytes

    @classmethod
    def generate(cls) -> EncryptionKey:
        """Draw a new hybrid key pair."""
        mlkem_key = mlkem.MLKEM768PrivateKey.generate()
        seed = mlkem_key.private_bytes_raw()
        x_key = x25519.X25519PrivateKey.generate()
        return cls(seed, x_key.private_bytes_raw())

    @classmethod
    def from_bytes(cls, raw: bytes) -> EncryptionKey:
        """Load ``mlkem_seed || x25519_private``."""
        if len(raw) != ENCRYPTION_PRIVATE_LEN:
            raise ProtocolError(f"an encryption private key is {ENCRYPTION_PRIVATE_LEN} bytes")
        return cls(raw[:MLKEM768_SEED_LEN], raw[MLKEM768_SEED_LEN:])

    def private_bytes(self) -> bytes:
        """``mlkem_seed || x25519_private`` (for the encrypted keystore only)."""
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
