"""The merge: each change applies to what is on disk, never to a stale view, so every
process's change is kept (two handles on one file stand for two processes; the real
processes are in `test_keystore_processes`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from client_sdk.keystore import EncryptionKeyRecord, Keystore, RosterHead, rules
from client_sdk.protocol.keys import EncryptionKey
from tests.unit.keystores import BOB_KEY, BOB_NEW_KEY, DAY, NOW, PASSPHRASE, make_keystore


@pytest.fixture
def keystore(tmp_path: Path) -> Keystore:
    return make_keystore(tmp_path / "profile")


@pytest.fixture
def other(keystore: Keystore) -> Keystore:
    """A second handle on the same file, as another process would hold it."""
    return Keystore.open(keystore.home, PASSPHRASE)


def test_a_stale_view_pinning_again_keeps_the_verification(
    keystore: Keystore, other: Keystore
) -> None:
    keystore.pin("bob", BOB_KEY, NOW)
    stale = Keystore.open(keystore.home, PASSPHRASE)
    other.mark_verified("bob", BOB_KEY)

    stale.pin("bob", BOB_KEY, NOW + 1)
    stale.set_checkpoint("room-1", 3, b"\x03" * 32, "three")

    assert Keystore.open(keystore.home, PASSPHRASE).is_verified("bob")


def test_a_rotation_elsewhere_survives_a_change_from_a_stale_view(
    keystore: Keystore, other: Keystore
) -> None:
    first = keystore.add_encryption_key(EncryptionKey.generate(), NOW + 7 * DAY, now=NOW)
    stale = Keystore.open(keystore.home, PASSPHRASE)
    rotated = other.add_encryption_key(EncryptionKey.generate(), NOW + 8 * DAY, now=NOW + DAY)

    stale.set_checkpoint("room-1", 3, b"\x03" * 32, "three")
    stale.pin("carol", BOB_NEW_KEY, NOW + 2)

    reopened = Keystore.open(keystore.home, PASSPHRASE)
    assert reopened.current_encryption_key().key_id == rotated.key_id
    assert reopened.encryption_key_by_id(first.key_id) is not None
    assert set(reopened.state.pins) == {"carol"}
    assert reopened.checkpoint("room-1") is not None


def test_encryption_keys_added_by_two_processes_are_a_union(
    keystore: Keystore, other: Keystore
) -> None:
    one = keystore.add_encryption_key(EncryptionKey.generate(), NOW + 7 * DAY, now=NOW)
    two = other.add_encryption_key(EncryptionKey.generate(), NOW + 8 * DAY, now=NOW + 1)

    ids = {r.key_id for r in Keystore.open(keystore.home, PASSPHRASE).state.encryption_keys}
    assert ids == {one.key_id, two.key_id}


def test_a_smaller_checkpoint_from_a_stale_view_does_not_replace_a_larger_one(
    keystore: Keystore, other: Keystore
) -> None:
    other.set_checkpoint("room-1", 9, b"\x09" * 32, "nine")

    kept = keystore.set_checkpoint("room-1", 5, b"\x05" * 32, "five")

    assert kept.size == 9
    assert Keystore.open(keystore.home, PASSPHRASE).checkpoint("room-1") == kept


def test_an_older_roster_head_from_a_stale_view_does_not_replace_a_newer_one(
    keystore: Keystore, other: Keystore
) -> None:
    other.set_roster_head("room-1", 6, b"\x06" * 32)

    keystore.set_roster_head("room-1", 2, b"\x02" * 32)

    assert keystore.roster_head("room-1") == RosterHead(version=6, body_hash=b"\x06" * 32)


def test_a_change_made_elsewhere_is_seen_without_reopening(
    keystore: Keystore, other: Keystore
) -> None:
    other.pin_and_verify("bob", BOB_KEY, NOW)
    other.pin_log_key("room-1", "origin+01+AA")

    assert keystore.is_verified("bob")
    assert keystore.log_key("room-1") == "origin+01+AA"
    assert not keystore.refresh()  # already up to date


def test_the_newest_key_is_current_whatever_order_two_processes_add_them_in(
    keystore: Keystore, other: Keystore
) -> None:
    newer = EncryptionKeyRecord.new(EncryptionKey.generate(), NOW + 9 * DAY, now=NOW + DAY)
    older = EncryptionKeyRecord.new(EncryptionKey.generate(), NOW + 8 * DAY, now=NOW)

    keystore.update(lambda state: rules.add_encryption_key(state, newer))
    other.update(lambda state: rules.add_encryption_key(state, older))

    assert keystore.current_encryption_key().key_id == newer.key_id
    stored = keystore.encryption_key_by_id(older.key_id)
    assert stored is not None
    assert stored.retired_at == NOW + DAY


def test_every_change_made_elsewhere_is_seen_even_in_quick_same_size_succession(
    keystore: Keystore, other: Keystore
) -> None:
    path = keystore.path
    times = [path.stat().st_mtime_ns]
    for size in range(10, 40):  # two digits each: every file has the same length
        other.set_checkpoint("room-1", size, bytes([size]) * 32, "note")
        times.append(path.stat().st_mtime_ns)

        assert keystore.refresh()
        stored = keystore.checkpoint("room-1")
        assert stored is not None
        assert stored.size == size
    assert times == sorted(set(times))  # strictly increasing, never a repeated stamp
