"""Safety numbers: format, symmetry, sensitivity to every input, and checking."""

from __future__ import annotations

import re

import pytest

from client_sdk.protocol import fingerprint
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.fingerprint import (
    account_fingerprint,
    check_safety_number,
    normalize_safety_number,
    safety_number,
)

ALICE_KEY = bytes(range(32))
BOB_KEY = bytes(range(32, 64))
OTHER_KEY = bytes(range(64, 96))

# libsignal fingerprint.rs, fingerprint_test_v1 (33-byte keys, hash version 0).
SIGNAL_ALICE_KEY = bytes.fromhex(
    "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"
)
SIGNAL_BOB_KEY = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
SIGNAL_DISPLAYABLE = "300354477692869396892869876765458257569162576843440918079131"


def test_numeric_fingerprint_matches_signal_test_vector() -> None:
    alice = fingerprint._numeric_fingerprint(0, SIGNAL_ALICE_KEY, b"+14152222222", 5200)
    bob = fingerprint._numeric_fingerprint(0, SIGNAL_BOB_KEY, b"+14153333333", 5200)

    assert "".join(sorted((alice, bob))) == SIGNAL_DISPLAYABLE


def test_account_fingerprint_is_pinned_for_a_fixed_key() -> None:
    # Regression: both sides of a comparison must keep computing the same digits.
    assert account_fingerprint("alice", ALICE_KEY) == "763753520205036106828260704004"


def test_account_fingerprint_is_30_digits() -> None:
    assert re.fullmatch(r"[0-9]{30}", account_fingerprint("alice", ALICE_KEY))


def test_account_fingerprint_rejects_a_key_that_is_not_32_bytes() -> None:
    with pytest.raises(ProtocolError, match="32 bytes"):
        account_fingerprint("alice", ALICE_KEY + b"\x00")


def test_safety_number_is_twelve_groups_of_five_digits() -> None:
    number = safety_number("alice", ALICE_KEY, "bob", BOB_KEY)

    assert re.fullmatch(r"[0-9]{5}( [0-9]{5}){11}", number)


def test_safety_number_is_the_two_fingerprints_in_sorted_order() -> None:
    number = safety_number("alice", ALICE_KEY, "bob", BOB_KEY)
    parts = sorted((account_fingerprint("alice", ALICE_KEY), account_fingerprint("bob", BOB_KEY)))

    assert normalize_safety_number(number) == "".join(parts)


def test_safety_number_is_the_same_on_both_sides() -> None:
    assert safety_number("alice", ALICE_KEY, "bob", BOB_KEY) == safety_number(
        "bob", BOB_KEY, "alice", ALICE_KEY
    )


@pytest.mark.parametrize(
    ("a_id", "a_key", "b_id", "b_key"),
    [
        ("alice", OTHER_KEY, "bob", BOB_KEY),
        ("alice", ALICE_KEY, "bob", OTHER_KEY),
    ],
    ids=["first-key", "second-key"],
)
def test_safety_number_changes_when_either_key_changes(
    a_id: str, a_key: bytes, b_id: str, b_key: bytes
) -> None:
    assert safety_number(a_id, a_key, b_id, b_key) != safety_number(
        "alice", ALICE_KEY, "bob", BOB_KEY
    )


@pytest.mark.parametrize(
    ("a_id", "b_id"), [("mallory", "bob"), ("alice", "mallory")], ids=["first-id", "second-id"]
)
def test_safety_number_changes_when_either_account_id_changes(a_id: str, b_id: str) -> None:
    assert safety_number(a_id, ALICE_KEY, b_id, BOB_KEY) != safety_number(
        "alice", ALICE_KEY, "bob", BOB_KEY
    )


def test_normalize_strips_spaces_tabs_and_newlines() -> None:
    assert normalize_safety_number(" 12345 67890\n\t11111 ") == "123456789011111"


def test_check_accepts_the_matching_number_however_it_is_spaced() -> None:
    digits = normalize_safety_number(safety_number("alice", ALICE_KEY, "bob", BOB_KEY))
    typed = f"{digits[:30]}\n{digits[30:]}"

    check_safety_number(typed, "bob", BOB_KEY, "alice", ALICE_KEY)


def test_check_rejects_the_number_of_other_keys() -> None:
    other = safety_number("alice", ALICE_KEY, "bob", OTHER_KEY)

    with pytest.raises(VerificationError, match="does not match"):
        check_safety_number(other, "alice", ALICE_KEY, "bob", BOB_KEY)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "12345", "1" * 61, "a" * 60, "\u0661" * 60],
    ids=["empty", "blank", "short", "long", "letters", "arabic-indic-digits"],
)
def test_check_fails_closed_on_text_that_is_not_60_digits(text: str) -> None:
    with pytest.raises(VerificationError, match="not a safety number"):
        check_safety_number(text, "alice", ALICE_KEY, "bob", BOB_KEY)
