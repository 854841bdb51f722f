"""`Keystore`: the open keystore of one profile, shared safely between processes.

Every change is a read-modify-write under the profile's exclusive lock
(`lock`): re-read and decrypt the file, apply this one change (a pure rule
from `rules`) to what is on disk now, write the result atomically, and make it
the in-memory view. So a long-running `parley read --follow` never writes its
old view over what `parley verify` or `parley keys rotate` did meanwhile. A
file the passphrase cannot open is never written.

Reads see other processes' changes too: `state` re-reads the file when it
changed on disk (one ``stat`` per access otherwise; the key is derived once,
so a re-read is one ChaCha20-Poly1305 decryption of a few kilobytes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from client_sdk._files import write_atomically
from client_sdk.keystore import rules
from client_sdk.keystore.lock import exclusive_lock
from client_sdk.keystore.migrate import state_from_v1, state_from_v3
from client_sdk.keystore.models import (
    CheckpointRecord,
    EncryptionKeyRecord,
    KeystoreState,
    PinResult,
    RosterHead,
    server_urls,
)
from client_sdk.keystore.sealed import (
    DEFAULT_SCRYPT_N,
    KEYSTORE_VERSION,
    Header,
    derive_key,
    new_header,
    open_sealed,
    read_header,
    seal,
)
from client_sdk.protocol.errors import KeystoreError, UntrustedKeyError
from client_sdk.protocol.keys import EncryptionKey, key_id

__all__ = ["KEYSTORE_FILENAME", "Keystore"]

KEYSTORE_FILENAME = "keystore.json"
"""The keystore file's name in the profile directory."""

_T = TypeVar("_T")
_Stamp = tuple[int, int, int]
"""(inode, size, mtime in ns) of the file a view was read from. Every write is a new
file renamed into place, but a freed inode number comes back and a kernel's file
clock may tick in milliseconds, so each write also sets its file's mtime past the
one it replaces: no two successive files share a stamp."""


class Keystore:
    """An open keystore: a view of its state, refreshed from disk, and typed changes.

    Build one with `create` or `open`, never directly.
    """

    def __init__(
        self, home: Path, header: Header, key: bytes, state: KeystoreState, stamp: _Stamp
    ) -> None:
        """Hold an already-decrypted state; use `create` or `open` instead."""
        self.home = home
        self._file = os.fspath(home / KEYSTORE_FILENAME)  # stat on every read: keep it cheap
        self._header = header
        self._key = key
        self._state = state
        self._stamp = stamp

    @property
    def path(self) -> Path:
        """The keystore file."""
        return self.home / KEYSTORE_FILENAME

    @property
    def state(self) -> KeystoreState:
        """The state as on disk now (re-read if another process changed it). Read-only:
        change it through the methods below or `update`."""
        self.refresh()
        return self._state

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
        header = new_header(scrypt_n)
        key = derive_key(passphrase, header.kdf)
        if not home.exists():
            home.mkdir(parents=True, mode=0o700)
            home.chmod(0o700)  # mkdir's mode is filtered by the umask
        with exclusive_lock(home):
            if cls.exists(home):
                raise KeystoreError(f"a keystore already exists at {home / KEYSTORE_FILENAME}")
            stamp = _write(home / KEYSTORE_FILENAME, seal(header, key, state.to_json()))
        return cls(home, header, key, state, stamp)

    @classmethod
    def open(cls, home: Path, passphrase: str) -> Keystore:
        """Read and decrypt the keystore in `home`; raise `KeystoreError` on any failure.

        An older file is migrated to the current version here, under the lock
        (`client_sdk.keystore.migrate`).
        """
        path = home / KEYSTORE_FILENAME
        data, stamp = _read(path)
        header, _, _ = read_header(path, data)
        key = derive_key(passphrase, header.kdf)
        state, version = _decode(path, data, key, header)
        keystore = cls(home, header, key, state, stamp)
        if version != KEYSTORE_VERSION:
            keystore.update(lambda current: current)  # rewritten as the current version
        return keystore

    def change_passphrase(self, passphrase: str, *, scrypt_n: int | None = None) -> None:
        """Re-encrypt the keystore under `passphrase`, under the lock like every change:
        the state on disk now, a fresh salt, and scrypt no cheaper than the file's
        (`parley passphrase change`), or of cost `scrypt_n` where the caller says so,
        as `create` takes it (tests keep their profiles cheap to open).

        Another process that opened the file under the old passphrase is refused its
        next read or write ("open it again"), never handed a state it cannot write.
        """
        if not passphrase:
            raise KeystoreError("the keystore passphrase must not be empty")
        cost = max(self._header.kdf.n, DEFAULT_SCRYPT_N) if scrypt_n is None else scrypt_n
        header = new_header(cost)
        key = derive_key(passphrase, header.kdf)
        with exclusive_lock(self.home):
            data, stamp = _read(self.path)
            current, _ = _decode(self.path, data, self._key, self._header)
            self._stamp = _write(self.path, seal(header, key, current.to_json()), after=stamp)
            self._header, self._key, self._state = header, key, current

    def refresh(self) -> bool:
        """Re-read the file if another process changed it; whether it had changed."""
        try:
            stat = os.stat(self._file)
        except OSError as exc:
            raise KeystoreError(f"cannot read the keystore at {self.path}: {exc.strerror}") from exc
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) == self._stamp:
            return False
        data, stamp = _read(self.path)
        self._state, _ = _decode(self.path, data, self._key, self._header)
        self._stamp = stamp
        return True

    def update(self, change: Callable[[KeystoreState], KeystoreState]) -> KeystoreState:
        """Apply `change` to the state on disk now, under the lock; the state written.

        `change` must compute the new state from the one it is given (never from
        an older view), and return that very object to change nothing.
        """

        def apply(current: KeystoreState) -> tuple[KeystoreState, KeystoreState]:
            new = change(current)
            return new, new

        return self._change(apply)

    def _change(self, change: Callable[[KeystoreState], tuple[KeystoreState, _T]]) -> _T:
        with exclusive_lock(self.home):
            data, stamp = _read(self.path)
            current, version = _decode(self.path, data, self._key, self._header)
            self._state, self._stamp = current, stamp
            new, result = change(current)
            if new is not current or version != KEYSTORE_VERSION:
                self._stamp = _write(
                    self.path, seal(self._header, self._key, new.to_json()), after=stamp
                )
                self._state = new
        return result

    # Encryption keys.

    def current_encryption_key(self) -> EncryptionKeyRecord:
        """The newest encryption key that is not retired; `KeystoreError` if there is none."""
        live = [r for r in self.state.encryption_keys if r.published and r.retired_at is None]
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
        record = EncryptionKeyRecord.new(key, not_after, now)
        self.update(lambda state: rules.add_encryption_key(state, record))
        return record

    def stage_encryption_key(
        self, key: EncryptionKey, not_after: int, now: int
    ) -> EncryptionKeyRecord:
        """Keep `key` before publishing it; it becomes current with `publish_encryption_key`."""
        record = EncryptionKeyRecord.new(key, not_after, now, published=False)
        self.update(lambda state: rules.add_encryption_key(state, record))
        return record

    def publish_encryption_key(self, key_id: str) -> None:
        """The staged key `key_id` is in the directory now: make it the current key."""
        self.update(lambda state: rules.publish_encryption_key(state, key_id))

    def purge_retired(self, now: int, grace: int) -> list[str]:
        """Delete the private keys retired at least `grace` ago (same unit as `now`), and
        keys staged that long ago and never published; their ids.

        This bounds what a stolen device can decrypt from the past.
        """
        if not rules.purge_retired(self.state, now, grace)[1]:
            return []  # the common case, without taking the lock
        return self._change(lambda state: rules.purge_retired(state, now, grace))

    # Contacts' account keys.

    def pin(self, account_id: str, account_key: bytes, now: int) -> PinResult:
        """Record a sighting of `account_key` for `account_id` (see `rules.pin`)."""
        pin = self.state.pins.get(account_id)
        if pin is not None and pin.account_key == account_key and pin.pending_key is None:
            return PinResult.SAME  # the common case, without taking the lock
        return self._change(lambda state: rules.pin(state, account_id, account_key, now))

    def mark_verified(self, account_id: str, account_key: bytes) -> None:
        """Record that the user verified `account_key` (the pinned or the pending key)."""
        self.update(lambda state: rules.mark_verified(state, account_id, account_key))

    def pin_and_verify(self, account_id: str, account_key: bytes, now: int) -> None:
        """Pin `account_key` if it is new and mark it verified, in one change."""

        def change(state: KeystoreState) -> KeystoreState:
            seen, _ = rules.pin(state, account_id, account_key, now)
            return rules.mark_verified(seen, account_id, account_key)

        self.update(change)

    def is_verified(self, account_id: str) -> bool:
        """Whether the user verified this contact's current key."""
        pin = self.state.pins.get(account_id)
        return bool(pin and pin.verified and pin.pending_key is None)

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

    # Logs and rooms.

    def checkpoint(self, log_id: str) -> CheckpointRecord | None:
        """The newest checkpoint recorded for `log_id`, if any."""
        return self.state.checkpoints.get(log_id)

    def set_checkpoint(self, log_id: str, size: int, root: bytes, note: str) -> CheckpointRecord:
        """Record a checkpoint the caller verified; the one stored afterwards.

        That is the larger of this one and the stored one: a caller that gets a
        larger one back must check that its own is a prefix of it. A second root
        for the stored size is a fork: `VerificationError`.
        """
        record = CheckpointRecord(size=size, root=root, note=note)
        self.update(lambda state: rules.set_checkpoint(state, log_id, record))
        stored = self._state.checkpoints[log_id]
        return stored

    def log_key(self, log_id: str) -> str | None:
        """The verifier key pinned for `log_id`, if any."""
        return self.state.log_keys.get(log_id)

    def pin_log_key(self, log_id: str, vkey: str) -> None:
        """Pin `vkey` as the key of `log_id`; `VerificationError` if another is pinned."""
        if self.log_key(log_id) == vkey:
            return
        self.update(lambda state: rules.pin_log_key(state, log_id, vkey))

    def roster_head(self, room_id: str) -> RosterHead | None:
        """The newest roster version verified for `room_id`, with its body hash, if any."""
        return self.state.roster_heads.get(room_id)

    def set_roster_head(self, room_id: str, version: int, body_hash: bytes) -> RosterHead:
        """Advance the room's roster head (see `rules.set_roster_head`); the one stored."""
        head = RosterHead(version=version, body_hash=body_hash)
        self.update(lambda state: rules.set_roster_head(state, room_id, head))
        return self._state.roster_heads[room_id]

    def set_auto_receipts(self, on: bool) -> None:
        """Acknowledge every message read (`on`), or only instruments, disclosures and
        documents."""
        self.update(lambda state: state.model_copy(update={"auto_receipts": on}))

    def set_servers(self, servers: Sequence[str]) -> tuple[str, ...]:
        """Make `servers` the profile's server URLs, the preferred first (checked and
        cleaned by `server_urls`); the URLs stored."""
        urls = server_urls(servers)
        return self.update(lambda state: state.model_copy(update={"servers": urls})).servers

    def witness_key(self) -> bytes | None:
        """The seed of this profile's witness key, if it ever made one."""
        return self.state.witness_key

    def set_witness_key(self, seed: bytes) -> bytes:
        """Store a witness key seed unless one exists; the seed stored (the first one wins)."""
        self.update(lambda state: rules.set_witness_key(state, seed))
        stored = self._state.witness_key
        assert stored is not None
        return stored


def _read(path: Path) -> tuple[bytes, _Stamp]:
    try:
        with path.open("rb") as file:
            stat = os.fstat(file.fileno())
            data = file.read()
    except FileNotFoundError:
        raise KeystoreError(f"no keystore at {path}; run `parley enroll` first") from None
    except OSError as exc:
        raise KeystoreError(f"cannot read the keystore at {path}: {exc.strerror}") from exc
    return data, (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _write(path: Path, data: bytes, *, after: _Stamp | None = None) -> _Stamp:
    # File metadata, not state: the clock read here never reaches the keystore's content.
    mtime_ns = None if after is None else max(time.time_ns(), after[2] + 1)
    try:
        write_atomically(path, data, mtime_ns=mtime_ns)
        stat = os.stat(path)
    except OSError as exc:
        raise KeystoreError(f"cannot save the keystore at {path}: {exc.strerror}") from exc
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _decode(path: Path, data: bytes, key: bytes, header: Header) -> tuple[KeystoreState, int]:
    """The state in a file's bytes, and the file's format version."""
    found, value = open_sealed(path, data, key, header)
    if found.version == 1:
        return state_from_v1(value), 1
    if found.version in (2, 3):
        return state_from_v3(value), found.version
    try:
        return KeystoreState.model_validate(value), found.version
    except ValidationError as exc:
        raise KeystoreError(f"the keystore at {path} holds a malformed state") from exc
