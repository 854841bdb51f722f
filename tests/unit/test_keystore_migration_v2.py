"""Format version 2 -> 3: X-Wing keys become seeds, and the keys from before stay usable.

tests/vectors/keystore_v2 is a file the version-2 code wrote, with envelopes
that code sealed to its two keys. Those keys are two parts drawn
independently, which no seed expands to: they are kept byte for byte as
legacy keys, still open what was sealed to them, and only new keys are seeds
(the client replaces a legacy current key at its next key check:
tests/api/test_keys.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client_sdk.keystore import KEYSTORE_VERSION, Keystore
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.envelope import Envelope, open_envelope
from client_sdk.protocol.keys import EncryptionKey
from tests.unit.keystores import read_document, vector_profile

VECTORS = Path(__file__).parent.parent / "vectors" / "keystore_v2"
EXPECTED: dict[str, Any] = json.loads((VECTORS / "expected.json").read_text())
SEALED: dict[str, Any] = json.loads((VECTORS / "envelopes.json").read_text())
PASSPHRASE: str = EXPECTED["passphrase"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A profile holding a copy of the version-2 file."""
    return vector_profile(tmp_path, VECTORS)


def test_the_vector_is_a_version_2_file(home: Path) -> None:
    assert read_document(home)["version"] == 2


def test_opening_a_version_2_file_rewrites_it_as_the_current_version(home: Path) -> None:
    before = read_document(home)
    Keystore.open(home, PASSPHRASE)
    after = read_document(home)
    assert (after["version"], KEYSTORE_VERSION) == (4, 4)
    assert after["kdf"] == before["kdf"]


def test_the_keys_from_before_seeds_survive_byte_for_byte_as_legacy_keys(home: Path) -> None:
    Keystore.open(home, PASSPHRASE)
    state = Keystore.open(home, PASSPHRASE).state  # read back from the rewritten file
    assert [
        {
            "key_id": r.key_id,
            "private": b64e(r.private.private_bytes()),
            "public": b64e(r.public),
            "retired_at": r.retired_at,
        }
        for r in state.encryption_keys
    ] == EXPECTED["encryption_keys"]
    assert all(r.private.legacy for r in state.encryption_keys)
    assert all(r.private.public_bytes() == r.public for r in state.encryption_keys)


@pytest.mark.parametrize("index", [0, 1], ids=["retired key", "current key"])
def test_an_envelope_sealed_before_the_migration_still_opens(home: Path, index: int) -> None:
    keystore = Keystore.open(home, PASSPHRASE)
    record = keystore.state.encryption_keys[index]
    envelope = Envelope.model_validate(SEALED["envelopes"][index])
    content = open_envelope(
        envelope,
        sender_signing_key=b64d(SEALED["sender_signing_key"]),
        recipient_device="dev-alice",
        recipient_key=record.private,
    )
    assert content == {"type": "text", "text": EXPECTED["plaintexts"][index]}


def test_a_key_added_after_the_migration_is_stored_as_a_seed(home: Path) -> None:
    keystore = Keystore.open(home, PASSPHRASE)
    record = keystore.stage_encryption_key(EncryptionKey.generate(), 2_000_000_000_000, 1)
    stored = Keystore.open(home, PASSPHRASE).encryption_key_by_id(record.key_id)
    assert stored is not None
    assert not stored.private.legacy
    assert len(stored.private.private_bytes()) == 32
