"""`parley fingerprint` after a key substitution: it names the pinned key and the key the
server shows, with both safety numbers, prints no number to compare, and exits 1.

The SDK side (the pin set against the directory) is tested against a lying server in
tests/adversarial/test_directory.py; these tests hold what the command prints.
"""

from __future__ import annotations

import json

import pytest
import typer

from client_sdk.cli.identity import show_fingerprint
from client_sdk.client import ContactFingerprint

PINNED = "11111 " * 11 + "11111"
SHOWN = "22222 " * 11 + "22222"


def found(*, pinned_key_id: str | None, verified: bool = False) -> ContactFingerprint:
    return ContactFingerprint(
        account_id="b0b",
        safety_number=SHOWN,
        key_id="new-key",
        pinned_key_id=pinned_key_id,
        pinned_safety_number=None if pinned_key_id is None else PINNED,
        verified=verified,
    )


def test_fingerprint_of_a_substituted_key_warns_names_both_numbers_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as exited:
        show_fingerprint(found(pinned_key_id="old-key"), json_output=False)

    printed = capsys.readouterr()
    assert exited.value.exit_code == 1
    assert printed.out == ""  # nothing to read out and verify by mistake
    assert printed.err.count("\n") == 1
    assert "the key of account b0b differs from the one pinned" in printed.err
    assert f"pinned key old-key (safety number {PINNED})" in printed.err
    assert f"now shows key new-key (safety number {SHOWN})" in printed.err


def test_fingerprint_json_of_a_substituted_key_says_it_does_not_match_the_pin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as exited:
        show_fingerprint(found(pinned_key_id="old-key"), json_output=True)

    printed = capsys.readouterr()
    shown = json.loads(printed.out)
    assert exited.value.exit_code == 1
    assert shown["ok"] is False
    assert shown["pinned"] is True
    assert shown["matches_pinned"] is False
    assert (shown["pinned_safety_number"], shown["safety_number"]) == (PINNED, SHOWN)
    assert (shown["pinned_key_id"], shown["key_id"]) == ("old-key", "new-key")
    error = json.loads(printed.err)
    assert error["code"] == "key-substituted"
    assert "differs from the one pinned" in error["message"]


def test_fingerprint_of_the_pinned_key_prints_the_number_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show_fingerprint(found(pinned_key_id="new-key", verified=True), json_output=False)

    assert capsys.readouterr() == (f"{SHOWN}\n", "")


def test_fingerprint_of_a_contact_never_seen_prints_the_number_and_says_nothing_is_pinned(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show_fingerprint(found(pinned_key_id=None), json_output=True)

    shown = json.loads(capsys.readouterr().out)
    assert (shown["ok"], shown["pinned"], shown["matches_pinned"]) == (True, False, None)
    assert shown["safety_number"] == SHOWN
