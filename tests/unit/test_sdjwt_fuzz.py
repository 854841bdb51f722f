"""Malformed dossiers and presentations raise only the documented errors."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.sdjwt import issue_dossier, verify_presentation
from client_sdk.protocol.sdjwt.disclosure import parse_disclosure, split_sd_jwt
from client_sdk.protocol.sdjwt.jws import parse_jwt

KEY = SigningKey.generate()
DOSSIER = issue_dossier(
    [{"name": f"N{n}", "rank": "cpl", "where": {"lat": 1.5}} for n in range(4)],
    key=KEY,
    issuer="acc",
    device_id="dev",
    room_id="room-1",
    title="T",
    issued_at=1,
    decoys=2,
)
PRESENTATION = DOSSIER.select("2-3", "name,where")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.text(alphabet=ALPHABET) | st.text())
def test_any_text_is_refused_with_verification_error(text: str) -> None:
    try:
        verify_presentation(text, issuer_key=KEY.public_bytes(), room_id="room-1")
    except VerificationError:
        return
    raise AssertionError("random text verified")


@given(st.text(alphabet=ALPHABET) | st.text())
def test_the_parsers_raise_only_protocol_error(text: str) -> None:
    for parse in (split_sd_jwt, parse_disclosure, lambda t: parse_jwt(t, typ="x")):
        try:
            parse(text)
        except ProtocolError:
            pass


@given(json_values)
def test_any_json_disclosure_parses_or_raises_protocol_error(value: object) -> None:
    try:
        parse_disclosure(b64e(json.dumps(value).encode()))
    except ProtocolError:
        pass


@settings(max_examples=300)
@given(st.data())
def test_any_changed_character_makes_the_presentation_fail(data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(PRESENTATION) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != PRESENTATION[position]))
    changed = PRESENTATION[:position] + replacement + PRESENTATION[position + 1 :]
    try:
        verify_presentation(changed, issuer_key=KEY.public_bytes(), room_id="room-1")
    except VerificationError:
        return
    raise AssertionError(f"a presentation changed at {position} still verifies")


@settings(max_examples=100)
@given(st.lists(st.integers(min_value=0, max_value=4), max_size=8))
def test_dropping_or_repeating_disclosures_never_raises_anything_else(picks: list[int]) -> None:
    jwt, disclosures = split_sd_jwt(PRESENTATION)
    chosen = [disclosures[i] for i in picks if i < len(disclosures)]
    try:
        verified = verify_presentation(
            "~".join([jwt, *chosen, ""]), issuer_key=KEY.public_bytes(), room_id="room-1"
        )
    except VerificationError:
        return
    assert {r.number for r in verified.records} <= {2, 3}
