"""The encrypted local key store in the profile directory (DESIGN §3).

One file, ``$PARLEY_HOME/keystore.json`` (mode 0600, directory 0700)::

    {"version": 1,
     "kdf": {"name": "scrypt", "salt": b64, "n": 32768, "r": 8, "p": 1},
     "nonce": b64, "ciphertext": b64}

``ciphertext`` is ChaCha20-Poly1305, under the 32-byte scrypt key of the
passphrase, of the RFC 8785 canonical JSON of the `KeystoreState`; the
associated data is a label and the canonical ``{"version", "kdf"}`` header, so
nobody can swap the parameters without the passphrase. A wrong passphrase and
a modified file are the same `KeystoreError`. Every write is atomic: a
temporary file in the same directory, fsync, `os.replace`.

Besides the account's and device's keys the store holds the contacts' pinned
account keys (trust on first use, failing closed once verified) and the
newest checkpoint seen of each log. Changes stay in memory until `save`;
time is always a parameter, never read from the clock here. It raises
`KeystoreError` and `UntrustedKeyError` (see `client_sdk.protocol.errors`).
"""

from __future__ import annotations

import enum
import getpass
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import StrictBool, ValidationError

from client_sdk._files import write_atomically
from client_sdk.protocol.encoding import b64d, b64e, canonical_json, parse_json_object
from client_sdk.protocol.errors import (
    KeystoreError,
    ProtocolError,
    UntrustedKeyError,
    VerificationError,
)
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.models import B64, Int, Role, WireModel

__all__ = [
    "DEFAULT_SCRYPT_N",
    "KEYSTORE_FILENAME",
    "CheckpointRecord",
    "EncryptionKeyRecord",
    "Keystore",
    "KeystoreError",
    "KeystoreState",
    "Pin",
    "PinResult",
    "UntrustedKeyError",
    "default_home",
    "passphrase_from_env_or_prompt",
]

KEYSTORE_FILENAME = "keystore.json"
KEYSTORE_VERSION: Literal[1] = 1
DEFAULT_SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
# Bounds on parameters read from the file: a tampered file must not make us
# spend a gigabyte or a minute before the AEAD can reject it.
_MIN_SCRYPT_N = 2**10
_MAX_SCRYPT_N = 2**20
_MAX_SCRYPT_R = 32
_MAX_SCRYPT_MEMORY = 2**30  # scrypt needs 128 * n * r bytes
_MAX_SCRYPT_P = 16
_SALT_LEN = 16
_NONCE_LEN = 12
_AAD_LABEL = b"parley/v1/keystore\x00"


class PinResult(enum.Enum):
    """What `Keystore.pin` found: a first sighting, the pinned key, or a different key."""

    NEW = "new"
    SAME = "same"
    CHANGED = "changed"


@dataclass(slots=True)
class EncryptionKeyRecord:
    """One of this device's HPKE keys; retired keys stay until `purge_retired`."""

    key_id: str
    private: EncryptionKey
    public: bytes
    created_at: int
    not_after: int
    retired_at: int | None = None


@dataclass(slots=True)
class Pin:
    """A contact's pinned account key.

    ``account_key`` is the key trusted now (first seen, or verified);
    ``verified_key`` the key the user last verified, if ever; ``pending_key``
    a different key seen after verification, trusted only once re-verified.
    """

    account_key: bytes
    first_seen: int
    verified: bool = False
    verified_key: bytes | None = None
    pending_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """The newest checkpoint of one log this client has verified."""

    size: int
    root: bytes
    note: str


@dataclass(slots=True)
class KeystoreState:
    """Everything the keystore holds; `extra` is free JSON for later features."""

    server: str
    account_id: str
    device_id: str
    role: Role
    name: str
    account_key: SigningKey
    device_key: SigningKey
    encryption_keys: list[EncryptionKeyRecord] = field(default_factory=list)
    pins: dict[str, Pin] = field(default_factory=dict)
    checkpoints: dict[str, CheckpointRecord] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Keystore:
    """An open keystore: its decrypted `state` and the key to save it again.

    Build one with `create` or `open`, never directly.
    """

    def __init__(self, home: Path, header: _Header, key: bytes, state: KeystoreState) -> None:
        """Hold an already-decrypted state; use `create` or `open` instead."""
        self.home = home
        self.state = state
        self._header = header
        self._aead = ChaCha20Poly1305(key)

    @property
    def path(self) -> Path:
        """The keystore file."""
        return self.home / KEYSTORE_FILENAME

    @staticmethod
    def exists(home: Path) -> bool:
        """Whether `home` holds a keystore file."""
        return (home / KEYSTORE_FILENAME).is_file()

    @classmethod
    def create(
        cls, home: Path, passphrase: str, state: KeystoreState, *, scrypt_n: int = DEFAULT_SCRYPT_N
    ) -> Keystore:
        """Write a new keystore holding `state`; refuse to overwrite an existing one."""
        if not passphrase:
            raise KeystoreError("the keystore passphrase must not be empty")
        if cls.exists(home):
            raise KeystoreError(f"a keystore already exists at {home / KEYSTORE_FILENAME}")
        header = _Header(
            version=KEYSTORE_VERSION,
            kdf=_KdfParams(
                name="scrypt", salt=b64e(os.urandom(_SALT_LEN)), n=scrypt_n, r=SCRYPT_R, p=SCRYPT_P
            ),
        )
        _check_kdf(header.kdf)
        if not home.exists():
            home.mkdir(parents=True, mode=0o700)
            home.chmod(0o700)  # mkdir's mode is filtered by the umask
        keystore = cls(home, header, _derive_key(passphrase, header.kdf), state)
        keystore.save()
        return keystore

    @classmethod
    def open(cls, home: Path, passphrase: str) -> Keystore:
        """Read and decrypt the keystore in `home`; raise `KeystoreError` on any failure."""
        path = home / KEYSTORE_FILENAME
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeystoreError(f"no keystore at {path}; run `parley enroll` first") from None
        except OSError as exc:
            raise KeystoreError(f"cannot read the keystore at {path}: {exc.strerror}") from exc
        try:
            document = parse_json_object(data)
        except ProtocolError as exc:
            raise KeystoreError(f"the keystore at {path} is damaged") from exc
        if document.get("version") != KEYSTORE_VERSION:
            raise KeystoreError(
                f"the keystore at {path} has version {document.get('version')!r}; "
                f"this client reads version {KEYSTORE_VERSION}"
            )
        try:
            stored = _StoredFile.model_validate(document)
            nonce, ciphertext = b64d(stored.nonce), b64d(stored.ciphertext)
            salt = b64d(stored.kdf.salt)
        except (ProtocolError, ValidationError) as exc:
            raise KeystoreError(f"the keystore at {path} is damaged") from exc
        header = _Header(version=stored.version, kdf=stored.kdf)
        if len(nonce) != _NONCE_LEN or len(salt) < _SALT_LEN:
            raise KeystoreError(f"the keystore at {path} is damaged")
        _check_kdf(header.kdf)
        key = _derive_key(passphrase, header.kdf)
        try:
            plaintext = ChaCha20Poly1305(key).decrypt(nonce, ciphertext, _aad(header))
        except InvalidTag:
            raise KeystoreError(
                f"cannot open the keystore at {path}: wrong passphrase, or the file was modified"
            ) from None
        try:
            state = _state_from_json(parse_json_object(plaintext))
        except (ProtocolError, ValidationError) as exc:
            raise KeystoreError(f"the keystore at {path} holds a malformed state") from exc
        return cls(home, header, key, state)

    def save(self) -> None:
        """Encrypt the state under a fresh nonce and replace the file atomically."""
        try:
            plaintext = canonical_json(_state_to_json(self.state))
        except (ProtocolError, ValidationError) as exc:
            raise KeystoreError(f"cannot save the keystore: {exc}") from exc
        nonce = os.urandom(_NONCE_LEN)
        stored = _StoredFile(
            version=self._header.version,
            kdf=self._header.kdf,
            nonce=b64e(nonce),
            ciphertext=b64e(self._aead.encrypt(nonce, plaintext, _aad(self._header))),
        )
        write_atomically(self.path, canonical_json(stored.model_dump(mode="json")))

    # Encryption keys.

    def current_encryption_key(self) -> EncryptionKeyRecord:
        """The newest encryption key that is not retired; `KeystoreError` if there is none."""
        live = [r for r in self.state.encryption_keys if r.retired_at is None]
        if not live:
            raise KeystoreError("the keystore holds no current encryption key")
        return max(live, key=lambda r: r.created_at)

    def encryption_key_by_id(self, key_id: str) -> EncryptionKeyRecord | None:
        """The encryption key (current or retired, not yet purged) with this id, if any."""
        return next((r for r in self.state.encryption_keys if r.key_id == key_id), None)

    def add_encryption_key(
        self, key: EncryptionKey, not_after: int, now: int
    ) -> EncryptionKeyRecord:
        """Make `key` the current encryption key and retire every other one at `now`."""
        public = key.public_bytes()
        record = EncryptionKeyRecord(
            key_id=key_id(public), private=key, public=public, created_at=now, not_after=not_after
        )
        if self.encryption_key_by_id(record.key_id) is not None:
            raise KeystoreError(f"encryption key {record.key_id} is already in the keystore")
        for old in self.state.encryption_keys:
            if old.retired_at is None:
                old.retired_at = now
        self.state.encryption_keys.append(record)
        return record

    def purge_retired(self, now: int, grace: int) -> list[str]:
        """Delete the private keys retired at least `grace` ago (same unit as `now`); return ids.

        This bounds what a stolen device can decrypt from the past.
        """
        keep: list[EncryptionKeyRecord] = []
        purged: list[str] = []
        for record in self.state.encryption_keys:
            if record.retired_at is not None and now - record.retired_at >= grace:
                purged.append(record.key_id)
            else:
                keep.append(record)
        self.state.encryption_keys = keep
        return purged

    # Contacts' account keys.

    def pin(self, account_id: str, account_key: bytes, now: int) -> PinResult:
        """Record a sighting of `account_key` for `account_id` (trust on first use).

        A changed key replaces an unverified pin, but never a verified one: it
        is kept as ``pending_key`` and the contact becomes unverified, so
        `require_trusted` fails until the user verifies again; until then every
        sighting, of the old key or the new, is `PinResult.CHANGED`.
        """
        pin = self.state.pins.get(account_id)
        if pin is None:
            self.state.pins[account_id] = Pin(account_key=account_key, first_seen=now)
            return PinResult.NEW
        if account_key == pin.account_key and pin.pending_key is None:
            return PinResult.SAME
        if pin.verified_key is None:
            self.state.pins[account_id] = Pin(account_key=account_key, first_seen=now)
        elif account_key != pin.account_key:
            pin.pending_key = account_key
            pin.verified = False
        return PinResult.CHANGED

    def require_trusted(
        self, account_id: str, account_key: bytes, *, require_verified: bool = False
    ) -> None:
        """Raise `UntrustedKeyError` unless `account_key` is the trusted key of `account_id`.

        Fails closed on an unknown account, on a key other than the pinned one,
        on a verified contact whose key changed, and (with `require_verified`)
        on a contact the user never verified.
        """
        pin = self.state.pins.get(account_id)
        if pin is None:
            raise UntrustedKeyError(f"no key is pinned for account {account_id}")
        if pin.pending_key is not None:
            raise UntrustedKeyError(
                f"the key of account {account_id} changed since you verified it "
                f"(verified {key_id(pin.account_key)}, now {key_id(pin.pending_key)}); "
                f"compare the safety number again and run `parley verify {account_id}`"
            )
        if account_key != pin.account_key:
            raise UntrustedKeyError(
                f"the key presented for account {account_id} ({key_id(account_key)}) "
                f"is not the pinned key ({key_id(pin.account_key)})"
            )
        if require_verified and not pin.verified:
            raise UntrustedKeyError(
                f"account {account_id} is not verified; compare the safety number "
                f"and run `parley verify {account_id}`"
            )

    def mark_verified(self, account_id: str, account_key: bytes) -> None:
        """Record that the user verified `account_key` (the pinned or the pending key)."""
        pin = self.state.pins.get(account_id)
        if pin is None or account_key not in (pin.account_key, pin.pending_key):
            raise KeystoreError(
                f"cannot verify {key_id(account_key)}: it is not a key seen for account "
                f"{account_id}; fetch the account's key first"
            )
        pin.account_key = account_key
        pin.verified = True
        pin.verified_key = account_key
        pin.pending_key = None

    # Checkpoints.

    def checkpoint(self, log_id: str) -> CheckpointRecord | None:
        """The newest checkpoint recorded for `log_id`, if any."""
        return self.state.checkpoints.get(log_id)

    def set_checkpoint(self, log_id: str, size: int, root: bytes, note: str) -> None:
        """Record a checkpoint the caller verified as consistent with the one stored.

        Raises `VerificationError` rather than going back to a smaller tree or
        accepting a second root for the same size (a fork).
        """
        old = self.state.checkpoints.get(log_id)
        if old is not None and size < old.size:
            raise VerificationError(
                f"log {log_id}: checkpoint of size {size} is older than the one seen ({old.size})"
            )
        if old is not None and size == old.size and root != old.root:
            raise VerificationError(f"log {log_id}: two different roots for size {size}")
        self.state.checkpoints[log_id] = CheckpointRecord(size=size, root=root, note=note)


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """The profile directory: ``$PARLEY_HOME``, else ``~/.config/parley``."""
    env = os.environ if environ is None else environ
    configured = env.get("PARLEY_HOME", "")
    return Path(configured).expanduser() if configured else Path.home() / ".config" / "parley"


def passphrase_from_env_or_prompt(prompt: str = "Keystore passphrase: ") -> str:
    """``$PARLEY_PASSPHRASE`` if set, else a passphrase read from the terminal without echo."""
    from_env = os.environ.get("PARLEY_PASSPHRASE")
    if from_env:
        return from_env
    return getpass.getpass(prompt)


# The file format. Internal: parsed strictly, unknown fields are errors.


class _KdfParams(WireModel):
    name: Literal["scrypt"]
    salt: B64
    n: Int
    r: Int
    p: Int


class _Header(WireModel):
    version: Literal[1]
    kdf: _KdfParams


class _StoredFile(_Header):
    nonce: B64
    ciphertext: B64


class _StoredEncryptionKey(WireModel):
    key_id: str
    private: B64
    public: B64
    created_at: Int
    not_after: Int
    retired_at: Int | None


class _StoredPin(WireModel):
    account_key: B64
    first_seen: Int
    verified: StrictBool
    verified_key: B64 | None
    pending_key: B64 | None


class _StoredCheckpoint(WireModel):
    size: Int
    root: B64
    note: str


class _StoredState(WireModel):
    server: str
    account_id: str
    device_id: str
    role: Role
    name: str
    account_key: B64
    device_key: B64
    encryption_keys: list[_StoredEncryptionKey]
    pins: dict[str, _StoredPin]
    checkpoints: dict[str, _StoredCheckpoint]
    extra: dict[str, Any]


def _aad(header: _Header) -> bytes:
    return _AAD_LABEL + canonical_json(header.model_dump(mode="json"))


def _check_kdf(kdf: _KdfParams) -> None:
    n_ok = _MIN_SCRYPT_N <= kdf.n <= _MAX_SCRYPT_N and kdf.n & (kdf.n - 1) == 0
    r_ok = 1 <= kdf.r <= _MAX_SCRYPT_R and 128 * kdf.n * kdf.r <= _MAX_SCRYPT_MEMORY
    if not (n_ok and r_ok and 1 <= kdf.p <= _MAX_SCRYPT_P):
        raise KeystoreError(
            f"unsupported scrypt parameters n={kdf.n} r={kdf.r} p={kdf.p} "
            f"(n must be a power of two from {_MIN_SCRYPT_N} to {_MAX_SCRYPT_N})"
        )


def _derive_key(passphrase: str, kdf: _KdfParams) -> bytes:
    # NFC, so the same passphrase typed on another system derives the same key.
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Scrypt(salt=b64d(kdf.salt), length=32, n=kdf.n, r=kdf.r, p=kdf.p).derive(secret)


def _state_to_json(state: KeystoreState) -> dict[str, Any]:
    stored = _StoredState(
        server=state.server,
        account_id=state.account_id,
        device_id=state.device_id,
        role=state.role,
        name=state.name,
        account_key=b64e(state.account_key.private_bytes()),
        device_key=b64e(state.device_key.private_bytes()),
        encryption_keys=[
            _StoredEncryptionKey(
                key_id=r.key_id,
                private=b64e(r.private.private_bytes()),
                public=b64e(r.public),
                created_at=r.created_at,
                not_after=r.not_after,
                retired_at=r.retired_at,
            )
            for r in state.encryption_keys
        ],
        pins={
            account_id: _StoredPin(
                account_key=b64e(p.account_key),
                first_seen=p.first_seen,
                verified=p.verified,
                verified_key=_b64e_optional(p.verified_key),
                pending_key=_b64e_optional(p.pending_key),
            )
            for account_id, p in state.pins.items()
        },
        checkpoints={
            log_id: _StoredCheckpoint(size=c.size, root=b64e(c.root), note=c.note)
            for log_id, c in state.checkpoints.items()
        },
        extra={},
    )
    # `extra` goes to canonical JSON as it is: pydantic would quietly turn
    # NaN into null or bytes into text, and the state read back would differ.
    return {**stored.model_dump(mode="json"), "extra": state.extra}


def _state_from_json(value: dict[str, Any]) -> KeystoreState:
    stored = _StoredState.model_validate(value)
    return KeystoreState(
        server=stored.server,
        account_id=stored.account_id,
        device_id=stored.device_id,
        role=stored.role,
        name=stored.name,
        account_key=SigningKey.from_bytes(b64d(stored.account_key)),
        device_key=SigningKey.from_bytes(b64d(stored.device_key)),
        encryption_keys=[
            EncryptionKeyRecord(
                key_id=r.key_id,
                private=EncryptionKey.from_bytes(b64d(r.private)),
                public=b64d(r.public),
                created_at=r.created_at,
                not_after=r.not_after,
                retired_at=r.retired_at,
            )
            for r in stored.encryption_keys
        ],
        pins={
            account_id: Pin(
                account_key=b64d(p.account_key),
                first_seen=p.first_seen,
                verified=p.verified,
                verified_key=_b64d_optional(p.verified_key),
                pending_key=_b64d_optional(p.pending_key),
            )
            for account_id, p in stored.pins.items()
        },
        checkpoints={
            log_id: CheckpointRecord(size=c.size, root=b64d(c.root), note=c.note)
            for log_id, c in stored.checkpoints.items()
        },
        extra=dict(stored.extra),
    )


def _b64e_optional(data: bytes | None) -> str | None:
    return None if data is None else b64e(data)


def _b64d_optional(text: str | None) -> bytes | None:
    return None if text is None else b64d(text)
