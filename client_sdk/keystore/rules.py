"""The keystore's change rules: pure functions from one state to the next.

`Keystore` applies each of them to the state it has just re-read from disk
under the lock, so a change made by another process in the meantime is kept.
They only move trust forward: a checkpoint only grows, a roster head only
advances, a verified contact stays verified until the user verifies again,
encryption keys are only added (and purged on purpose), a pinned log key or
witness key is never replaced. A rule that changes nothing returns the very
state it was given, so nothing is written.
"""

from __future__ import annotations

import itertools

from client_sdk.keystore.models import (
    CheckpointRecord,
    EncryptionKeyRecord,
    KeystoreState,
    PendingUpload,
    Pin,
    PinResult,
    RosterHead,
)
from client_sdk.protocol.errors import KeystoreError, VerificationError
from client_sdk.protocol.keys import key_id

__all__ = [
    "add_encryption_key",
    "add_pending_upload",
    "drop_pending_upload",
    "mark_verified",
    "pin",
    "pin_log_key",
    "publish_encryption_key",
    "purge_retired",
    "set_checkpoint",
    "set_roster_head",
    "set_witness_key",
]

WITNESS_SEED_LEN = 32


def add_encryption_key(state: KeystoreState, record: EncryptionKeyRecord) -> KeystoreState:
    """Add `record`; once published, the newest published key is current and every
    older one is retired at the creation of the next newer one, whatever order two
    processes add them in (an unpublished record changes no other)."""
    if any(r.key_id == record.key_id for r in state.encryption_keys):
        raise KeystoreError(f"encryption key {record.key_id} is already in the keystore")
    return _retire_superseded(state, (*state.encryption_keys, record))


def publish_encryption_key(state: KeystoreState, key_id: str) -> KeystoreState:
    """Mark the staged key `key_id` published (now in the directory), so it becomes current."""
    found = next((r for r in state.encryption_keys if r.key_id == key_id), None)
    if found is None:
        raise KeystoreError(f"encryption key {key_id} is not in the keystore")
    if found.published:
        return state
    return _retire_superseded(
        state,
        tuple(
            r.model_copy(update={"published": True}) if r is found else r
            for r in state.encryption_keys
        ),
    )


def purge_retired(state: KeystoreState, now: int, grace: int) -> tuple[KeystoreState, list[str]]:
    """Drop the private keys retired at least `grace` before `now`, and the keys staged
    that long ago and never published (their publication failed); the ids dropped."""
    keep = tuple(r for r in state.encryption_keys if not _expired(r, now, grace))
    purged = [r.key_id for r in state.encryption_keys if _expired(r, now, grace)]
    if not purged:
        return state, []
    return state.model_copy(update={"encryption_keys": keep}), purged


def _expired(record: EncryptionKeyRecord, now: int, grace: int) -> bool:
    if not record.published:
        return now - record.created_at >= grace
    return record.retired_at is not None and now - record.retired_at >= grace


def _retire_superseded(
    state: KeystoreState, records: tuple[EncryptionKeyRecord, ...]
) -> KeystoreState:
    published = sorted((r for r in records if r.published), key=lambda r: r.created_at)
    successor = {older.key_id: newer.created_at for older, newer in itertools.pairwise(published)}
    records = tuple(
        r.model_copy(update={"retired_at": successor[r.key_id]})
        if r.retired_at is None and r.key_id in successor
        else r
        for r in records
    )
    return state.model_copy(update={"encryption_keys": records})


def pin(
    state: KeystoreState, account_id: str, account_key: bytes, now: int
) -> tuple[KeystoreState, PinResult]:
    """Record a sighting of `account_key` for `account_id` (trust on first use).

    A changed key replaces an unverified pin, but never a verified one: it is
    kept as ``pending_key`` and the contact becomes unverified until the user
    verifies again; until then every sighting, of either key, is CHANGED.
    """
    old = state.pins.get(account_id)
    if old is None:
        return _with_pin(state, account_id, Pin(account_key=account_key, first_seen=now)), (
            PinResult.NEW
        )
    if account_key == old.account_key and old.pending_key is None:
        return state, PinResult.SAME
    if old.verified_key is None:
        new = Pin(account_key=account_key, first_seen=now)
    elif account_key != old.account_key and old.pending_key != account_key:
        new = old.model_copy(update={"pending_key": account_key, "verified": False})
    else:
        return state, PinResult.CHANGED
    return _with_pin(state, account_id, new), PinResult.CHANGED


def mark_verified(state: KeystoreState, account_id: str, account_key: bytes) -> KeystoreState:
    """The user verified `account_key` (the pinned or the pending key) of `account_id`."""
    old = state.pins.get(account_id)
    if old is None or account_key not in (old.account_key, old.pending_key):
        raise KeystoreError(
            f"cannot verify {key_id(account_key)}: it is not a key seen for account "
            f"{account_id}; fetch the account's key first"
        )
    new = old.model_copy(
        update={
            "account_key": account_key,
            "verified": True,
            "verified_key": account_key,
            "pending_key": None,
        }
    )
    return state if new == old else _with_pin(state, account_id, new)


def set_checkpoint(
    state: KeystoreState, log_id: str, checkpoint: CheckpointRecord
) -> KeystoreState:
    """Keep the larger checkpoint of the stored one and `checkpoint`.

    A smaller one changes nothing (another process got further meanwhile);
    a second root for the stored size is a fork, `VerificationError`.
    """
    old = state.checkpoints.get(log_id)
    if old is not None and checkpoint.size == old.size and checkpoint.root != old.root:
        raise VerificationError(f"log {log_id}: two different roots for size {checkpoint.size}")
    if old is not None and checkpoint.size <= old.size:
        return state
    return state.model_copy(update={"checkpoints": {**state.checkpoints, log_id: checkpoint}})


def pin_log_key(state: KeystoreState, log_id: str, vkey: str) -> KeystoreState:
    """Pin the verifier key of `log_id` on first sight; a different key is refused."""
    old = state.log_keys.get(log_id)
    if old is not None and old != vkey:
        raise VerificationError(f"log {log_id}: the server's log key changed from {old} to {vkey}")
    if old is not None:
        return state
    return state.model_copy(update={"log_keys": {**state.log_keys, log_id: vkey}})


def set_roster_head(state: KeystoreState, room_id: str, head: RosterHead) -> KeystoreState:
    """Advance the room's newest verified roster to `head` if it is newer.

    An older version changes nothing; another body for the stored version is
    a fork, `VerificationError`.
    """
    old = state.roster_heads.get(room_id)
    if old is not None and old.version == head.version and old.body_hash != head.body_hash:
        raise VerificationError(
            f"room {room_id}: two different rosters for version {head.version} "
            "(the other was verified in an earlier session)"
        )
    if old is not None and head.version <= old.version:
        return state
    return state.model_copy(update={"roster_heads": {**state.roster_heads, room_id: head}})


def set_witness_key(state: KeystoreState, seed: bytes) -> KeystoreState:
    """Store the witness key's seed unless one is stored already (the first one stays)."""
    if len(seed) != WITNESS_SEED_LEN:
        raise KeystoreError(f"a witness key seed is {WITNESS_SEED_LEN} bytes")
    if state.witness_key is not None:
        return state
    return state.model_copy(update={"witness_key": seed})


def _with_pin(state: KeystoreState, account_id: str, new: Pin) -> KeystoreState:
    return state.model_copy(update={"pins": {**state.pins, account_id: new}})


def add_pending_upload(state: KeystoreState, upload: PendingUpload) -> KeystoreState:
    """Remember an upload to resume."""
    if state.pending_uploads.get(upload.upload_id) == upload:
        return state
    uploads = dict(state.pending_uploads) | {upload.upload_id: upload}
    return state.model_copy(update={"pending_uploads": uploads})


def drop_pending_upload(state: KeystoreState, upload_id: str) -> KeystoreState:
    """Forget an upload (sent, abandoned or gone from the server)."""
    if upload_id not in state.pending_uploads:
        return state
    uploads = {k: v for k, v in state.pending_uploads.items() if k != upload_id}
    return state.model_copy(update={"pending_uploads": uploads})
