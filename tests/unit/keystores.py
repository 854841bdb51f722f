"""Factories for keystore tests: a state with fresh keys, a keystore with fast scrypt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from client_sdk.keystore import KEYSTORE_FILENAME, Keystore, KeystoreState
from client_sdk.protocol.encoding import canonical_json
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.models import Role

PASSPHRASE = "correct horse battery staple"
FAST_N = 2**10  # the smallest n the keystore accepts; keeps each test in milliseconds
NOW = 1_700_000_000
DAY = 86_400
BOB_KEY = bytes(range(32))
BOB_NEW_KEY = bytes(range(32, 64))


def make_state(
    *, account_id: str = "alice", role: Role = Role.PARTY, name: str = "Alice"
) -> KeystoreState:
    """A keystore state with fresh keys and nothing pinned."""
    return KeystoreState(
        servers=("https://parley.example",),
        account_id=account_id,
        device_id="dev-1",
        role=role,
        name=name,
        account_key=SigningKey.generate(),
        device_key=SigningKey.generate(),
    )


def make_keystore(home: Path, state: KeystoreState | None = None) -> Keystore:
    """A keystore created in `home` with fast scrypt parameters."""
    return Keystore.create(home, PASSPHRASE, state or make_state(), scrypt_n=FAST_N)


def read_document(home: Path) -> dict[str, object]:
    """The keystore file's JSON (header and sealed state)."""
    value = json.loads((home / KEYSTORE_FILENAME).read_bytes())
    assert isinstance(value, dict)
    return value


def write_document(home: Path, document: dict[str, object]) -> None:
    """Replace the keystore file with `document`."""
    (home / KEYSTORE_FILENAME).write_bytes(canonical_json(document))


def vector_profile(tmp_path: Path, vector: Path) -> Path:
    """A profile in `tmp_path` holding a copy of the keystore file of a test vector."""
    home = tmp_path / "profile"
    home.mkdir(mode=0o700)
    shutil.copyfile(vector / KEYSTORE_FILENAME, home / KEYSTORE_FILENAME)
    return home
