"""The keystore's trust: encryption keys, pins, checkpoints, log keys, roster heads, the
witness key, and the rules that only move them forward."""

from __future__ import annotations

from pathlib import Path

import pytest

from client_sdk.keystore import (
    CheckpointRecord,
    Keystore,
    KeystoreError,
    PinResult,
    RosterHead,
    UntrustedKeyError,
)
from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.keys import EncryptionKey
from tests.unit.keystores import BOB_KEY, BOB_NEW_KEY, DAY, NOW, make_keystore


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "profile"


@pytest.fixture
def keystore(home: Path) -> Keystore:
    return make_keystore(home)


# Encryption keys.


def test_added_encryption_key_becomes_current(keystore: Keystore) -> None:
    key = EncryptionKey.generate()

    record = keystore.add_encryption_key(key, not_after=NOW + 7 * DAY, now=NOW)

    assert keystore.current_encryption_key() is record
    assert record.public == key.public_bytes()
    assert (record.created_at, record.not_after, record.retired_at) == (NOW, NOW + 7 * DAY, None)


def test_adding_an_encryption_key_retires_the_previous_one(keystore: Keystore) -> None:
    old = keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 7 * DAY, now=NOW)

    keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 14 * DAY, now=NOW + DAY)

    stored = keystore.encryption_key_by_id(old.key_id)
    assert stored is not None
    assert stored.retired_at == NOW + DAY


def test_adding_the_same_encryption_key_twice_is_refused(keystore: Keystore) -> None:
    key = EncryptionKey.generate()
    keystore.add_encryption_key(key, not_after=NOW + 7 * DAY, now=NOW)

    with pytest.raises(KeystoreError, match="already"):
        keystore.add_encryption_key(key, not_after=NOW + 8 * DAY, now=NOW + DAY)


def test_retired_encryption_key_is_still_found_by_id(keystore: Keystore) -> None:
    old = keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 7 * DAY, now=NOW)
    keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 14 * DAY, now=NOW + DAY)

    found = keystore.encryption_key_by_id(old.key_id)
    assert found is not None
    assert (found.key_id, found.private) == (old.key_id, old.private)


def test_unknown_encryption_key_id_is_none(keystore: Keystore) -> None:
    assert keystore.encryption_key_by_id("nope") is None


def test_current_encryption_key_raises_when_there_is_none(keystore: Keystore) -> None:
    with pytest.raises(KeystoreError, match="no current encryption key"):
        keystore.current_encryption_key()


def test_purge_retired_deletes_only_keys_retired_longer_than_the_grace(
    keystore: Keystore,
) -> None:
    oldest = keystore.add_encryption_key(EncryptionKey.generate(), NOW + 7 * DAY, now=NOW)
    recent = keystore.add_encryption_key(EncryptionKey.generate(), NOW + 14 * DAY, now=NOW + DAY)
    current = keystore.add_encryption_key(
        EncryptionKey.generate(), NOW + 21 * DAY, now=NOW + 5 * DAY
    )

    purged = keystore.purge_retired(now=NOW + 5 * DAY, grace=3 * DAY)

    assert purged == [oldest.key_id]
    assert [r.key_id for r in keystore.state.encryption_keys] == [recent.key_id, current.key_id]


def test_purge_retired_never_deletes_the_current_key(keystore: Keystore) -> None:
    current = keystore.add_encryption_key(EncryptionKey.generate(), NOW + 7 * DAY, now=NOW)

    assert keystore.purge_retired(now=NOW + 365 * DAY, grace=0) == []
    assert keystore.current_encryption_key() is current


def test_a_staged_key_is_kept_but_not_current_until_published(keystore: Keystore) -> None:
    old = keystore.add_encryption_key(EncryptionKey.generate(), NOW + 7 * DAY, now=NOW)

    staged = keystore.stage_encryption_key(EncryptionKey.generate(), NOW + 9 * DAY, now=NOW + DAY)

    assert keystore.current_encryption_key().key_id == old.key_id
    assert keystore.encryption_key_by_id(staged.key_id) is not None
    keystore.publish_encryption_key(staged.key_id)
    assert keystore.current_encryption_key().key_id == staged.key_id
    retired = keystore.encryption_key_by_id(old.key_id)
    assert retired is not None
    assert retired.retired_at == NOW + DAY


def test_a_staged_key_never_published_is_purged_after_the_grace(keystore: Keystore) -> None:
    keystore.add_encryption_key(EncryptionKey.generate(), NOW + 7 * DAY, now=NOW)
    staged = keystore.stage_encryption_key(EncryptionKey.generate(), NOW + 9 * DAY, now=NOW + DAY)

    assert keystore.purge_retired(now=NOW + 2 * DAY, grace=3 * DAY) == []
    assert keystore.purge_retired(now=NOW + 4 * DAY, grace=3 * DAY) == [staged.key_id]


def test_publishing_an_unknown_key_is_refused(keystore: Keystore) -> None:
    with pytest.raises(KeystoreError, match="not in the keystore"):
        keystore.publish_encryption_key("nope")


# Pinned account keys.


def test_first_sighting_of_an_account_is_new(keystore: Keystore) -> None:
    assert keystore.pin("bob", BOB_KEY, NOW) is PinResult.NEW
    assert keystore.state.pins["bob"].first_seen == NOW


def test_seeing_the_pinned_key_again_is_same(keystore: Keystore) -> None:
    keystore.pin("bob", BOB_KEY, NOW)

    assert keystore.pin("bob", BOB_KEY, NOW + DAY) is PinResult.SAME
    assert keystore.state.pins["bob"].first_seen == NOW


def test_a_new_key_of_an_unverified_contact_is_changed_and_replaces_the_pin(
    keystore: Keystore,
) -> None:
    keystore.pin("bob", BOB_KEY, NOW)

    assert keystore.pin("bob", BOB_NEW_KEY, NOW + DAY) is PinResult.CHANGED
    keystore.require_trusted("bob", BOB_NEW_KEY)


def test_a_new_key_of_a_verified_contact_is_kept_pending_and_unverified(
    keystore: Keystore,
) -> None:
    keystore.pin("bob", BOB_KEY, NOW)
    keystore.mark_verified("bob", BOB_KEY)

    assert keystore.pin("bob", BOB_NEW_KEY, NOW + DAY) is PinResult.CHANGED

    pin = keystore.state.pins["bob"]
    assert (pin.account_key, pin.pending_key, pin.verified) == (BOB_KEY, BOB_NEW_KEY, False)


def test_verified_contact_whose_key_changed_is_untrusted_with_a_readable_reason(
    keystore: Keystore,
) -> None:
    keystore.pin("bob", BOB_KEY, NOW)
    keystore.mark_verified("bob", BOB_KEY)
    keystore.pin("bob", BOB_NEW_KEY, NOW + DAY)

    with pytest.raises(UntrustedKeyError) as caught:
        keystore.require_trusted("bob", BOB_NEW_KEY)

    message = str(caught.value)
    assert "the key of account bob changed since you verified it" in message
    assert "safety number" in message
    assert "parley verify bob" in message


def test_verified_contact_whose_key_changed_is_untrusted_even_with_the_old_key(
    keystore: Keystore,
) -> None:
    keystore.pin("bob", BOB_KEY, NOW)
    keystore.mark_verified("bob", BOB_KEY)
    keystore.pin("bob", BOB_NEW_KEY, NOW + DAY)

    with pytest.raises(UntrustedKeyError, match="changed since you verified"):
        keystore.require_trusted("bob", BOB_KEY)


def test_while_a_change_is_pending_the_old_key_is_also_changed(keystore: Keystore) -> None:
    keystore.pin("bob", BOB_KEY, NOW)
    keystore.mark_verified("bob", BOB_KEY)
    keystore.pin("bob", BOB_NEW_KEY, NOW + DAY)

    assert keystore.pin("bob", BOB_KEY, NOW + 2 * DAY) is PinResult.CHANGED


def test_untrusted_key_error_is_a_verification_error() -> None:
    assert issubclass(UntrustedKeyError, VerificationError)


def test_reverifying_the_new_key_restores_trust(keystore: Keystore) -> None:
    keystore.pin("bob", BOB_KEY, NOW)
    keystore.mark_verified("bob", BOB_KEY)
    keystore.pin("bob", BOB_NEW_KEY, NOW + DAY)

    keystore.mark_verified("bob", BOB_NEW_KEY)

    keystore.require_trusted("bob", BOB_NEW_KEY, require_verified=True)
    assert keystore.pin("bob", BOB_NEW_KEY, NOW + 2 * DAY) is PinResult.SAME


def test_require_trusted_accepts_the_pinned_key_of_an_unverified_contact(
    keystore: Keystore,
) -> None:
    keystore.pin("bob", BOB_KEY, NOW)

    keystore.require_trusted("bob", BOB_KEY)


def test_require_trusted_fails_closed_on_an_unknown_account(keystore: Keystore) -> None:
    with pytest.raises(UntrustedKeyError, match="no key is pinned for account bob"):
        keystore.require_trusted("bob", BOB_KEY)


def test_require_trusted_rejects_a_key_other_than_the_pinned_one(keystore: Keystore) -> None:
    keystore.pin("bob", BOB_KEY, NOW)

    with pytest.raises(UntrustedKeyError, match="is not the pinned key"):
        keystore.require_trusted("bob", BOB_NEW_KEY)


def test_require_verified_rejects_an_unverified_contact(keystore: Keystore) -> None:
    keystore.pin("bob", BOB_KEY, NOW)

    with pytest.raises(UntrustedKeyError, match="account bob is not verified"):
        keystore.require_trusted("bob", BOB_KEY, require_verified=True)


def test_mark_verified_refuses_a_key_never_seen_for_the_account(keystore: Keystore) -> None:
    keystore.pin("bob", BOB_KEY, NOW)

    with pytest.raises(KeystoreError, match="not a key seen for account bob"):
        keystore.mark_verified("bob", BOB_NEW_KEY)


# Checkpoints.


def test_recorded_checkpoint_is_returned(keystore: Keystore) -> None:
    keystore.set_checkpoint("room-1", 7, b"\x02" * 32, "note")

    assert keystore.checkpoint("room-1") == CheckpointRecord(size=7, root=b"\x02" * 32, note="note")


def test_checkpoint_of_an_unseen_log_is_none(keystore: Keystore) -> None:
    assert keystore.checkpoint("room-1") is None


def test_a_larger_checkpoint_replaces_the_stored_one(keystore: Keystore) -> None:
    keystore.set_checkpoint("room-1", 7, b"\x02" * 32, "seven")

    keystore.set_checkpoint("room-1", 9, b"\x03" * 32, "nine")

    assert keystore.checkpoint("room-1") == CheckpointRecord(size=9, root=b"\x03" * 32, note="nine")


def test_a_smaller_checkpoint_keeps_the_stored_one(keystore: Keystore) -> None:
    keystore.set_checkpoint("room-1", 7, b"\x02" * 32, "seven")

    kept = keystore.set_checkpoint("room-1", 6, b"\x03" * 32, "six")

    assert kept == CheckpointRecord(size=7, root=b"\x02" * 32, note="seven")
    assert keystore.checkpoint("room-1") == kept


def test_set_checkpoint_refuses_a_second_root_for_the_same_size(keystore: Keystore) -> None:
    keystore.set_checkpoint("room-1", 7, b"\x02" * 32, "seven")

    with pytest.raises(VerificationError, match="two different roots for size 7"):
        keystore.set_checkpoint("room-1", 7, b"\x03" * 32, "fork")


# Log keys, roster heads, the witness key.


def test_a_log_key_is_pinned_on_first_sight(keystore: Keystore) -> None:
    keystore.pin_log_key("room-1", "origin+01+AA")

    assert keystore.log_key("room-1") == "origin+01+AA"


def test_a_different_log_key_is_refused(keystore: Keystore) -> None:
    keystore.pin_log_key("room-1", "origin+01+AA")

    with pytest.raises(VerificationError, match="log key changed"):
        keystore.pin_log_key("room-1", "origin+02+BB")
    assert keystore.log_key("room-1") == "origin+01+AA"


def test_a_roster_head_advances_by_version_only(keystore: Keystore) -> None:
    keystore.set_roster_head("room-1", 4, b"\x04" * 32)

    kept = keystore.set_roster_head("room-1", 3, b"\x03" * 32)

    assert kept == RosterHead(version=4, body_hash=b"\x04" * 32)
    assert keystore.set_roster_head("room-1", 5, b"\x05" * 32).version == 5


def test_another_roster_body_for_the_stored_version_is_refused(keystore: Keystore) -> None:
    keystore.set_roster_head("room-1", 4, b"\x04" * 32)

    with pytest.raises(VerificationError, match="two different rosters for version 4"):
        keystore.set_roster_head("room-1", 4, b"\x05" * 32)


def test_the_first_witness_key_stays(keystore: Keystore) -> None:
    assert keystore.witness_key() is None

    first = keystore.set_witness_key(b"\x01" * 32)

    assert keystore.set_witness_key(b"\x02" * 32) == first == b"\x01" * 32


def test_a_witness_seed_is_32_bytes(keystore: Keystore) -> None:
    with pytest.raises(KeystoreError, match="32 bytes"):
        keystore.set_witness_key(b"\x01" * 31)
