"""The encrypted keystore file: format, safety, and what a change writes (or does not)."""

from __future__ import annotations

import getpass
import io
import stat
import sys
from pathlib import Path

import pytest

from client_sdk.keystore import (
    DEFAULT_SCRYPT_N,
    KEYSTORE_FILENAME,
    KEYSTORE_VERSION,
    LOCK_FILENAME,
    Keystore,
    default_home,
    passphrase_from_env_or_prompt,
)
from client_sdk.keystore.lock import exclusive_lock
from client_sdk.keystore.models import RosterHead
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import KeystoreError, VerificationError
from client_sdk.protocol.keys import EncryptionKey
from tests.unit.keystores import (
    BOB_KEY,
    BOB_NEW_KEY,
    DAY,
    FAST_N,
    NOW,
    PASSPHRASE,
    make_keystore,
    make_state,
    read_document,
    write_document,
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "profile"


@pytest.fixture
def keystore(home: Path) -> Keystore:
    return make_keystore(home)


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


def test_round_trip_restores_every_trust_anchor(keystore: Keystore, home: Path) -> None:
    keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 7 * DAY, now=NOW)
    keystore.add_encryption_key(EncryptionKey.generate(), not_after=NOW + 8 * DAY, now=NOW + DAY)
    keystore.pin("bob", BOB_KEY, NOW)
    keystore.mark_verified("bob", BOB_KEY)
    keystore.pin("bob", BOB_NEW_KEY, NOW + 1)
    keystore.set_checkpoint("room-1", 5, b"\x01" * 32, "parley.example/room-1\n5\nAQ==\n")
    keystore.pin_log_key("room-1", "parley.example/room-1+01234567+AAAA")
    keystore.set_roster_head("room-1", 3, b"\x02" * 32)
    keystore.set_witness_key(b"\x03" * 32)

    reopened = Keystore.open(home, PASSPHRASE).state

    assert reopened.encryption_keys == keystore.state.encryption_keys
    assert reopened.pins == keystore.state.pins
    assert reopened.checkpoints == keystore.state.checkpoints
    assert reopened.log_keys == {"room-1": "parley.example/room-1+01234567+AAAA"}
    assert reopened.roster_heads == {"room-1": RosterHead(version=3, body_hash=b"\x02" * 32)}
    assert reopened.witness_key == b"\x03" * 32


def test_the_file_is_format_version_2(keystore: Keystore, home: Path) -> None:
    assert read_document(home)["version"] == KEYSTORE_VERSION


def test_open_normalizes_the_passphrase_to_nfc(home: Path) -> None:
    Keystore.create(home, "caf\u00e9", make_state(), scrypt_n=FAST_N)

    Keystore.open(home, "cafe\u0301")


@pytest.mark.parametrize("fraction", [i / 16 for i in range(16)] + [1.0])
def test_a_flipped_byte_anywhere_in_the_file_is_rejected_and_never_overwritten(
    keystore: Keystore, home: Path, fraction: float
) -> None:
    path = home / KEYSTORE_FILENAME
    data = bytearray(path.read_bytes())
    position = min(int(fraction * len(data)), len(data) - 1)
    data[position] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(KeystoreError):
        Keystore.open(home, PASSPHRASE)
    with pytest.raises(KeystoreError):
        keystore.pin("bob", BOB_KEY, NOW)
    assert path.read_bytes() == bytes(data)


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
    write_document(home, {**read_document(home), "version": KEYSTORE_VERSION + 1})

    with pytest.raises(KeystoreError, match=f"version {KEYSTORE_VERSION + 1}"):
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


def test_a_new_passphrase_is_never_cheaper_unless_the_caller_says_so(home: Path) -> None:
    keystore = make_keystore(home)  # FAST_N, as a test makes it

    keystore.change_passphrase("a new passphrase here")
    kdf = read_document(home)["kdf"]
    assert isinstance(kdf, dict)
    assert kdf["n"] == DEFAULT_SCRYPT_N
    assert Keystore.open(home, "a new passphrase here").state.account_id == "alice"
    with pytest.raises(KeystoreError):
        Keystore.open(home, PASSPHRASE)

    keystore.change_passphrase(PASSPHRASE, scrypt_n=FAST_N)
    kdf = read_document(home)["kdf"]
    assert isinstance(kdf, dict)
    assert kdf["n"] == FAST_N
    assert Keystore.open(home, PASSPHRASE).state.account_id == "alice"


def test_keystore_file_mode_is_0600(keystore: Keystore, home: Path) -> None:
    assert stat.S_IMODE((home / KEYSTORE_FILENAME).stat().st_mode) == 0o600


def test_created_profile_directory_mode_is_0700(keystore: Keystore, home: Path) -> None:
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_changes_leave_no_temporary_files(keystore: Keystore, home: Path) -> None:
    keystore.pin("bob", BOB_KEY, NOW)
    keystore.mark_verified("bob", BOB_KEY)

    assert sorted(p.name for p in home.iterdir()) == [KEYSTORE_FILENAME, LOCK_FILENAME]


def test_a_change_is_on_disk_when_it_returns(keystore: Keystore, home: Path) -> None:
    keystore.pin("bob", BOB_KEY, NOW)

    assert Keystore.open(home, PASSPHRASE).state.pins["bob"].account_key == BOB_KEY


def test_a_change_that_fails_writes_nothing(keystore: Keystore, home: Path) -> None:
    keystore.set_checkpoint("room-1", 7, b"\x02" * 32, "seven")
    before = (home / KEYSTORE_FILENAME).read_bytes()

    with pytest.raises(VerificationError, match="two different roots"):
        keystore.set_checkpoint("room-1", 7, b"\x03" * 32, "fork")

    assert (home / KEYSTORE_FILENAME).read_bytes() == before


def test_a_change_that_changes_nothing_writes_nothing(keystore: Keystore, home: Path) -> None:
    keystore.pin("bob", BOB_KEY, NOW)
    keystore.set_checkpoint("room-1", 7, b"\x02" * 32, "seven")
    before = (home / KEYSTORE_FILENAME).read_bytes()

    keystore.pin("bob", BOB_KEY, NOW + 1)
    keystore.set_checkpoint("room-1", 6, b"\x03" * 32, "six")
    keystore.update(lambda state: state)

    assert (home / KEYSTORE_FILENAME).read_bytes() == before


def test_each_change_uses_a_fresh_nonce(keystore: Keystore, home: Path) -> None:
    first = read_document(home)["nonce"]

    keystore.pin("bob", BOB_KEY, NOW)

    assert read_document(home)["nonce"] != first


# A keystore the passphrase cannot open is never written.


def test_open_with_a_wrong_passphrase_leaves_the_file_as_it_was(
    keystore: Keystore, home: Path
) -> None:
    before = (home / KEYSTORE_FILENAME).read_bytes()

    with pytest.raises(KeystoreError, match="wrong passphrase"):
        Keystore.open(home, "incorrect horse")

    assert (home / KEYSTORE_FILENAME).read_bytes() == before


def test_a_change_to_a_file_damaged_since_it_was_opened_is_refused_and_writes_nothing(
    keystore: Keystore, home: Path
) -> None:
    document = read_document(home)
    ciphertext = bytearray(b64d(str(document["ciphertext"])))
    ciphertext[0] ^= 0x01
    write_document(home, {**document, "ciphertext": b64e(bytes(ciphertext))})
    damaged = (home / KEYSTORE_FILENAME).read_bytes()

    with pytest.raises(KeystoreError, match="modified"):
        keystore.pin("bob", BOB_KEY, NOW)

    assert (home / KEYSTORE_FILENAME).read_bytes() == damaged


def test_a_change_to_a_file_truncated_since_it_was_opened_is_refused_and_writes_nothing(
    keystore: Keystore, home: Path
) -> None:
    path = home / KEYSTORE_FILENAME
    path.write_bytes(path.read_bytes()[:100])

    with pytest.raises(KeystoreError, match="damaged"):
        keystore.mark_verified("alice", BOB_KEY)

    assert len(path.read_bytes()) == 100


def test_a_change_to_a_keystore_replaced_under_another_passphrase_writes_nothing(
    keystore: Keystore, home: Path
) -> None:
    other = home.parent / "other"
    Keystore.create(other, "another passphrase", make_state(), scrypt_n=FAST_N)
    (home / KEYSTORE_FILENAME).write_bytes((other / KEYSTORE_FILENAME).read_bytes())
    replaced = (home / KEYSTORE_FILENAME).read_bytes()

    with pytest.raises(KeystoreError, match="another passphrase"):
        keystore.pin("bob", BOB_KEY, NOW)

    assert (home / KEYSTORE_FILENAME).read_bytes() == replaced


# The lock.


def test_a_change_waits_for_the_lock_and_gives_up_with_a_keystore_error(
    keystore: Keystore, home: Path
) -> None:
    before = (home / KEYSTORE_FILENAME).read_bytes()
    # flock locks belong to an open file: a second descriptor is a second holder.
    with exclusive_lock(home), pytest.raises(KeystoreError, match="held the keystore lock"):
        with exclusive_lock(home, timeout=0.05):
            pass

    keystore.pin("bob", BOB_KEY, NOW)  # released: the next change goes through

    assert (home / KEYSTORE_FILENAME).read_bytes() != before


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

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("PARLEY_PASSPHRASE", raising=False)
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", Terminal())  # a terminal: asked without echo

    assert passphrase_from_env_or_prompt() == PASSPHRASE
    assert prompts == ["Keystore passphrase: "]
