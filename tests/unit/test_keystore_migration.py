"""Format version 1 -> today's: a file the version-1 code wrote (tests/vectors/keystore_v1)
opens with everything it held, typed, and is rewritten as the current version under the lock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client_sdk.keystore import (
    KEYSTORE_FILENAME,
    KEYSTORE_VERSION,
    Keystore,
    KeystoreError,
    RosterHead,
)
from client_sdk.keystore.migrate import state_from_v1
from client_sdk.protocol.encoding import b64d, b64e
from tests.unit.keystores import read_document, vector_profile

VECTORS = Path(__file__).parent.parent / "vectors" / "keystore_v1"
EXPECTED: dict[str, Any] = json.loads((VECTORS / "expected.json").read_text())
PASSPHRASE: str = EXPECTED["passphrase"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A profile holding a copy of the version-1 file."""
    return vector_profile(tmp_path, VECTORS)


def test_the_vector_is_a_version_1_file_with_the_noted_kdf(home: Path) -> None:
    document = read_document(home)
    assert document["version"] == 1
    assert isinstance(document["kdf"], dict)
    assert {k: document["kdf"][k] for k in ("name", "n", "r", "p")} == EXPECTED["kdf"]


def test_opening_a_version_1_file_keeps_identity_and_private_keys(home: Path) -> None:
    state = Keystore.open(home, PASSPHRASE).state

    assert (state.server, state.account_id, state.device_id, state.role.value, state.name) == (
        EXPECTED["server"],
        EXPECTED["account_id"],
        EXPECTED["device_id"],
        EXPECTED["role"],
        EXPECTED["name"],
    )
    assert b64e(state.account_key.private_bytes()) == EXPECTED["account_key"]
    assert b64e(state.device_key.private_bytes()) == EXPECTED["device_key"]
    assert [
        {
            "key_id": r.key_id,
            "private": b64e(r.private.private_bytes()),
            "public": b64e(r.public),
            "created_at": r.created_at,
            "not_after": r.not_after,
            "retired_at": r.retired_at,
        }
        for r in state.encryption_keys
    ] == EXPECTED["encryption_keys"]


def test_opening_a_version_1_file_keeps_pins_and_checkpoints(home: Path) -> None:
    state = Keystore.open(home, PASSPHRASE).state

    assert {a: p.model_dump(mode="json") for a, p in state.pins.items()} == EXPECTED["pins"]
    assert {
        log_id: c.model_dump(mode="json") for log_id, c in state.checkpoints.items()
    } == EXPECTED["checkpoints"]


def test_the_extra_trust_anchors_become_typed_fields(home: Path) -> None:
    extra = EXPECTED["extra"]

    state = Keystore.open(home, PASSPHRASE).state

    assert state.log_keys == extra["log_keys"]
    assert state.roster_heads == {
        room_id: RosterHead(version=version, body_hash=b64d(digest))
        for room_id, (version, digest) in extra["roster_heads"].items()
    }
    assert state.witness_key == b64d(extra["witness_key"])


def test_opening_rewrites_the_file_as_the_current_version_with_the_same_kdf(
    home: Path,
) -> None:
    before = read_document(home)

    Keystore.open(home, PASSPHRASE)

    after = read_document(home)
    assert after["version"] == KEYSTORE_VERSION
    assert after["kdf"] == before["kdf"]
    assert Keystore.open(home, PASSPHRASE).state.log_keys == EXPECTED["extra"]["log_keys"]


def test_a_version_1_file_and_a_wrong_passphrase_leave_the_file_as_it_was(home: Path) -> None:
    before = (home / KEYSTORE_FILENAME).read_bytes()

    with pytest.raises(KeystoreError, match="wrong passphrase"):
        Keystore.open(home, "not the passphrase")

    assert (home / KEYSTORE_FILENAME).read_bytes() == before


def test_a_version_1_state_with_an_unknown_extra_entry_is_refused() -> None:
    state: dict[str, Any] = {
        "server": "https://parley.example",
        "account_id": "alice",
        "device_id": "dev-1",
        "role": "party",
        "name": "Alice",
        "account_key": b64e(bytes(32)),
        "device_key": b64e(bytes(32)),
        "encryption_keys": [],
        "pins": {},
        "checkpoints": {},
        "extra": {"something_new": 1},
    }

    with pytest.raises(KeystoreError, match="malformed"):
        state_from_v1(state)
