"""The encrypted local key store in the profile directory (docs/design.md §3).

One file, ``$PARLEY_HOME/keystore.json`` (mode 0600, directory 0700),
ChaCha20-Poly1305 under a scrypt key of the passphrase (format: `sealed`).
It holds the account's and device's keys, this device's encryption keys,
and every trust anchor, each a typed field of `KeystoreState` (`models`):
contacts' pinned account keys (trust on first use, failing closed once
verified), each log's pinned key and newest verified checkpoint, each room's
newest verified roster, and an auditor's witness key.

Several processes may use one profile at once: every change is a
read-modify-write under an exclusive lock beside the file (`store`, `lock`),
and the change rules only move trust forward (`rules`). Files of earlier
versions are migrated on open (`migrate`). Time is always a parameter, never read here.
It raises `KeystoreError` (no keystore, wrong passphrase, damaged file) and
`UntrustedKeyError` (see `client_sdk.protocol.errors`).
"""

from __future__ import annotations

from client_sdk.keystore.lock import LOCK_FILENAME
from client_sdk.keystore.models import (
    CheckpointRecord,
    EncryptionKeyRecord,
    KeystoreState,
    PendingUpload,
    Pin,
    PinResult,
    RosterHead,
    server_urls,
)
from client_sdk.keystore.profile import default_home, passphrase_from_env_or_prompt
from client_sdk.keystore.sealed import DEFAULT_SCRYPT_N, KEYSTORE_VERSION
from client_sdk.keystore.store import KEYSTORE_FILENAME, Keystore
from client_sdk.protocol.errors import KeystoreError, UntrustedKeyError

__all__ = [
    "DEFAULT_SCRYPT_N",
    "KEYSTORE_FILENAME",
    "KEYSTORE_VERSION",
    "LOCK_FILENAME",
    "CheckpointRecord",
    "EncryptionKeyRecord",
    "Keystore",
    "KeystoreError",
    "KeystoreState",
    "PendingUpload",
    "Pin",
    "PinResult",
    "RosterHead",
    "UntrustedKeyError",
    "default_home",
    "passphrase_from_env_or_prompt",
    "server_urls",
]
