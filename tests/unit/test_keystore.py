"""The encrypted keystore: file format and safety, key rotation, pinning, checkpoints."""

from __future__ import annotations

import getpass
import json
import stat
from pathlib import Path

import pytest

from client_sdk.keystore import (
    DEFAULT_SCRYPT_N,
    KEYSTORE_FILENAME,
    CheckpointRecord,
    Keystore,
    KeystoreState,
    PinResult,
    default_home,
    passphrase_from_env_or_prompt,
)
from client_sdk.protocol.encoding import b64d, b64e, canonical_json
from client_sdk.protocol.errors import KeystoreError, UntrustedKeyError, VerificationError
from client_sdk.protocol.keys import EncryptionKey, SigningKey
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
        server="https://parley.example",
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


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "profile"


@pytest.fixture
def keystore(home: Path) -> Keystore:
    return make_keystore(home)


def read_document(home: Path) -> dict[str, object]:
    value = json.loads((home / KEYSTORE_FILENAME).read_bytes())
    assert isinstance(value, dict)
    return value


def write_document(home: Path, document: dict[str, object]) -> None:
    (home / KEYSTORE_FILENAME).write_bytes(canonical_json(document))


# The file.


def test_round_trip_restores_identity_and_keys(keystore: Keystore, home: Path) -> None:
    state = keystore.state

    reopened = Keystore.open(home, PASSPHRASE).state

    assert (reopened.server, reopened.account_id, reopened.device_id) == (
        state.server,
        state.account_id,
        state.device_id,
    )
    assert (reopened.role, reopened.name) == (state.role, state.name)
    assert reopened.account_key.private_bytes() == state.account_key.private_bytes()
    assert reopened.device_key.private_bytes() == state.device_key.private_bytes()


def test_round_trip_restores_encryption_keys_pins_checkpoints_and_extra(
    keystore: Keystore, home: Path
) -> None:
    keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 7 * DAY, now=NOW)
    keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 8 * DAY, now=NOW + DAY)
    keystore.pin("bob", BOB_KEY, NOW)
    keystore.mark_verified("bob", BOB_KEY)
    keystore.pin("bob", BOB_NEW_KEY, NOW + 1)
    keystore.set_checkpoint("room-1", 5, b"\x01" * 32, "parley.example/room-1\n5\nAQ==\n")
    keystore.state.extra["policy"] = {"require_verified": True}
    keystore.save()

    reopened = Keystore.open(home, PASSPHRASE).state

    assert reopened.encryption_keys == keystore.state.encryption_keys
    assert reopened.pins == keystore.state.pins
    assert reopened.checkpoints == keystore.state.checkpoints
    assert reopened.extra == {"policy": {"require_verified": True}}


def test_open_with_a_wrong_passphrase_raises(keystore: Keystore, home: Path) -> None:
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        Keystore.open(home, "incorrect horse")


def test_open_normalizes_the_passphrase_to_nfc(home: Path) -> None:
    Keystore.create(home, "caf\u00e9", make_state(), scrypt_n=FAST_N)

    Keystore.open(home, "cafe\u0301")


@pytest.mark.parametrize("fraction", [i / 16 for i in range(16)] + [1.0])
def test_a_flipped_byte_anywhere_in_the_file_is_rejected(
    keystore: Keystore, home: Path, fraction: float
) -> None:
    path = home / KEYSTORE_FILENAME
    data = bytearray(path.read_bytes())
    position = min(int(fraction * len(data)), len(data) - 1)
    data[position] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(KeystoreError):
        Keystore.open(home, PASSPHRASE)


def test_a_flipped_ciphertext_bit_is_rejected_as_modified(keystore: Keystore, home: Path) -> None:
    document = read_document(home)
    ciphertext = bytearray(b64d(str(document["ciphertext"])))
    ciphertext[len(ciphertext) // 2] ^= 0x80
    write_document(home, {**document, "ciphertext": b64e(bytes(ciphertext))})

    with pytest.raises(KeystoreError, match="modified"):
        Keystore.open(home, PASSPHRASE)


def test_kdf_parameters_are_bound_to_the_ciphertext(keystore: Keystore, home: Path) -> None:
    document = read_document(home)
    kdf = document["kdf"]
    assert isinstance(kdf, dict)
    write_document(home, {**document, "kdf": {**kdf, "r": 9}})

    with pytest.raises(KeystoreError, match="modified"):
        Keystore.open(home, PASSPHRASE)


def test_open_refuses_scrypt_parameters_beyond_the_bounds(keystore: Keystore, home: Path) -> None:
    document = read_document(home)
    kdf = document["kdf"]
    assert isinstance(kdf, dict)
    write_document(home, {**document, "kdf": {**kdf, "n": 2**30}})

    with pytest.raises(KeystoreError, match="unsupported scrypt parameters"):
        Keystore.open(home, PASSPHRASE)


def test_open_refuses_an_unknown_version(keystore: Keystore, home: Path) -> None:
    write_document(home, {**read_document(home), "version": 2})

    with pytest.raises(KeystoreError, match="version 2"):
        Keystore.open(home, PASSPHRASE)


def test_open_without_a_keystore_says_to_enroll(home: Path) -> None:
    with pytest.raises(KeystoreError, match="parley enroll"):
        Keystore.open(home, PASSPHRASE)


def test_exists_is_true_only_after_create(home: Path) -> None:
    assert not Keystore.exists(home)

    make_keystore(home)

    assert Keystore.exists(home)


def test_create_refuses_to_overwrite_a_keystore(keystore: Keystore, home: Path) -> None:
    with pytest.raises(KeystoreError, match="already exists"):
        make_keystore(home)


def test_create_refuses_an_empty_passphrase(home: Path) -> None:
    with pytest.raises(KeystoreError, match="must not be empty"):
        Keystore.create(home, "", make_state(), scrypt_n=FAST_N)


def test_create_uses_scrypt_n_2_15_r_8_p_1_by_default(home: Path) -> None:
    Keystore.create(home, PASSPHRASE, make_state())

    kdf = read_document(home)["kdf"]
    assert isinstance(kdf, dict)
    assert (kdf["name"], kdf["n"], kdf["r"], kdf["p"]) == ("scrypt", DEFAULT_SCRYPT_N, 8, 1)
    assert DEFAULT_SCRYPT_N == 2**15


def test_keystore_file_mode_is_0600(keystore: Keystore, home: Path) -> None:
    assert stat.S_IMODE((home / KEYSTORE_FILENAME).stat().st_mode) == 0o600


def test_created_profile_directory_mode_is_0700(keystore: Keystore, home: Path) -> None:
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_save_leaves_no_temporary_files(keystore: Keystore, home: Path) -> None:
    keystore.state.name = "Alice B."
    keystore.save()

    assert sorted(p.name for p in home.iterdir()) == [KEYSTORE_FILENAME]


def test_save_persists_changes(keystore: Keystore, home: Path) -> None:
    keystore.state.name = "Alice B."
    keystore.save()

    assert Keystore.open(home, PASSPHRASE).state.name == "Alice B."


def test_a_failed_save_keeps_the_previous_file(keystore: Keystore, home: Path) -> None:
    keystore.state.extra["bad"] = float("nan")

    with pytest.raises(KeystoreError, match="cannot save"):
        keystore.save()

    assert Keystore.open(home, PASSPHRASE).state.extra == {}
    assert sorted(p.name for p in home.iterdir()) == [KEYSTORE_FILENAME]


def test_each_save_uses_a_fresh_nonce(keystore: Keystore, home: Path) -> None:
    first = read_document(home)["nonce"]

    keystore.save()

    assert read_document(home)["nonce"] != first


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

    assert old.retired_at == NOW + DAY


def test_adding_the_same_encryption_key_twice_is_refused(keystore: Keystore) -> None:
    key = EncryptionKey.generate()
    keystore.add_encryption_key(key, not_after=NOW + 7 * DAY, now=NOW)

    with pytest.raises(KeystoreError, match="already"):
        keystore.add_encryption_key(key, not_after=NOW + 8 * DAY, now=NOW + DAY)


def test_retired_encryption_key_is_still_found_by_id(keystore: Keystore) -> None:
    old = keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 7 * DAY, now=NOW)
    keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 14 * DAY, now=NOW + DAY)

    assert keystore.encryption_key_by_id(old.key_id) is old


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
    assert keystore.state.encryption_keys == [recent, current]


def test_purge_retired_never_deletes_the_current_key(keystore: Keystore) -> None:
    current = keystore.add_encryption_key(EncryptionKey.generate(), NOW + 7 * DAY, now=NOW)

    assert keystore.purge_retired(now=NOW + 365 * DAY, grace=0) == []
    assert keystore.current_encryption_key() is current


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


def test_set_checkpoint_refuses_to_go_back_to_a_smaller_tree(keystore: Keystore) -> None:
    keystore.set_checkpoint("room-1", 7, b"\x02" * 32, "seven")

    with pytest.raises(VerificationError, match="older than the one seen"):
        keystore.set_checkpoint("room-1", 6, b"\x03" * 32, "six")


def test_set_checkpoint_refuses_a_second_root_for_the_same_size(keystore: Keystore) -> None:
    keystore.set_checkpoint("room-1", 7, b"\x02" * 32, "seven")

    with pytest.raises(VerificationError, match="two different roots for size 7"):
        keystore.set_checkpoint("room-1", 7, b"\x03" * 32, "fork")


# Profile directory and passphrase.


def test_default_home_honors_parley_home(tmp_path: Path) -> None:
    assert default_home({"PARLEY_HOME": str(tmp_path)}) == tmp_path


def test_default_home_falls_back_to_the_config_directory() -> None:
    assert default_home({}) == Path.home() / ".config" / "parley"


def test_passphrase_comes_from_parley_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_PASSPHRASE", PASSPHRASE)

    assert passphrase_from_env_or_prompt() == PASSPHRASE


def test_passphrase_is_prompted_for_without_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return PASSPHRASE

    monkeypatch.delenv("PARLEY_PASSPHRASE", raising=False)
    monkeypatch.setattr(getpass, "getpass", fake_getpass)

    assert passphrase_from_env_or_prompt() == PASSPHRASE
    assert prompts == ["Keystore passphrase: "]
