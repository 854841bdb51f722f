"""Hypothesis over the protocol's text and byte parsers: malformed input raises the
documented error (`client_sdk.protocol.errors`), never another exception.

Canonical JSON and base64url, signed notes, checkpoints and keys, cosignatures, the
witness's add-checkpoint request, Merkle proofs, tiles and entry bundles, SD-JWT
parts and record files, offer values and safety numbers. Each parser gets input
made from nothing and input made by changing a valid example. The budget is the
``HYPOTHESIS_PROFILE`` of `tests.support.fuzz`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import example, given
from hypothesis import strategies as st

from client_sdk.audit.tiles import iter_hashes, pack, unpack
from client_sdk.audit.witness import AddCheckpointRequest, Witness
from client_sdk.protocol.encoding import b64d, b64e, canonical_json, loads_strict
from client_sdk.protocol.envelope import pad, unpad
from client_sdk.protocol.errors import (
    ProtocolError,
    VerificationError,
    WitnessError,
)
from client_sdk.protocol.fingerprint import check_safety_number, safety_number
from client_sdk.protocol.instruments.offers import (
    Opening,
    open_escrow,
    pad_opening,
    parse_decimal,
    seal_escrow,
    unpad_opening,
)
from client_sdk.protocol.keys import EncryptionKey, SigningKey
from client_sdk.protocol.merkle import (
    consistency_proof_from_leaves,
    inclusion_proof_from_leaves,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from client_sdk.protocol.note import (
    SIG_COSIGNATURE_V1,
    Checkpoint,
    VerifierKey,
    cosign,
    format_signer_key,
    format_verifier_key,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    verify_checkpoint,
    verify_cosignature,
)
from client_sdk.protocol.sdjwt import issue_dossier
from client_sdk.protocol.sdjwt.disclosure import split_sd_jwt
from client_sdk.protocol.sdjwt.jws import parse_jwt, verify_jwt
from client_sdk.protocol.sdjwt.records import load_records, parse_fields_spec, parse_records_spec
from client_sdk.protocol.sdjwt.verify import load_issued
from tests.audit.tlog import Log
from tests.support.fuzz import (
    FUZZ,
    json_bytes,
    json_values,
    mutated_bytes,
    mutated_text,
)

ORIGIN = "fuzz.test/rooms/r1"
LOG = Log(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
LOG.grow(9)
LOG_KEY = parse_verifier_key(LOG.vkey)
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
WITNESS = VerifierKey("w.test", WITNESS_KEY.public_key().public_bytes_raw(), SIG_COSIGNATURE_V1)
NOTE = LOG.note()
TEXT = NOTE.partition("\n\n")[0] + "\n"
COSIGNATURE = cosign(TEXT, "w.test", WITNESS_KEY, 1_767_000_000)
COSIGNED = NOTE + COSIGNATURE
REQUEST = LOG.request(4).to_text()

# --- canonical JSON and base64url ---------------------------------------------------


@FUZZ
@given(st.binary(max_size=300) | json_bytes())
def test_strict_json_parses_or_raises_protocol_error(data: bytes) -> None:
    try:
        loads_strict(data)
    except ProtocolError:
        pass


SAFE = 2**53 - 1  # I-JSON's exact integers, the domain RFC 8785 serialises
exact_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.floats(min_value=-SAFE, max_value=SAFE)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(exact_json)
def test_canonical_json_reads_back_as_the_same_value_and_is_a_fixed_point(value: Any) -> None:
    encoded = canonical_json(value)
    assert canonical_json(loads_strict(encoded)) == encoded
    assert loads_strict(encoded) == json.loads(json.dumps(value))


# Member names and strings that tell code point order from UTF-16 order (U+E000-U+FFFF
# against supplementary characters), lone surrogates, and integers either side of 2**53.
_tricky_text = st.text(
    st.characters(codec=None, categories=None)
    | st.sampled_from(["\ue000", "\uffff", "\U0001f600", "\ud800", "a", "\x7f", "\x00"]),
    max_size=8,
)
differential_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**54), max_value=2**54)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _tricky_text,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_tricky_text, inner, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(differential_json)
@example({"\ue000": 1, "\U0001f600": 2, "z": 3})  # UTF-16 order is not code point order
@example({"\U0001f600": {"\ue000": [2**53 - 1, -(2**53 - 1)]}})
@example([2**53])  # one past the exact integers
@example({"n": -(2**53)})
@example({"s": "\ud800"})  # a lone surrogate
@example({"\udfff": 1})
@example({"f": [1.0, -0.0, 1e21, 5e-324]})
@example(("a", ("b",), {"c": None}))
@example({1: "a"})  # a member name that is not a string
def test_canonical_json_writes_what_the_rfc8785_package_writes(value: Any) -> None:
    try:
        expected: bytes | None = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError):
        expected = None
    if expected is None:
        with pytest.raises(ProtocolError):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


@FUZZ
@given(json_values)
def test_canonical_json_encodes_or_raises_protocol_error(value: Any) -> None:
    try:
        canonical_json(value)
    except ProtocolError:
        pass


@FUZZ
@given(st.text(max_size=60) | st.binary(max_size=40).map(b64e).flatmap(mutated_text))
def test_base64url_decodes_or_raises_protocol_error(text: str) -> None:
    try:
        b64d(text)
    except ProtocolError:
        pass


# --- signed notes, checkpoints, keys, cosignatures ----------------------------------


@FUZZ
@given(st.text(max_size=200) | mutated_text(TEXT))
def test_checkpoint_text_parses_or_raises_protocol_error(text: str) -> None:
    try:
        Checkpoint.parse(text)
    except ProtocolError:
        pass


@FUZZ
@given(st.text(max_size=300) | mutated_text(COSIGNED))
def test_a_changed_note_opens_only_as_it_was_or_raises_verification_error(note: str) -> None:
    try:
        text, names = open_note(note, [LOG_KEY, WITNESS])
    except VerificationError:
        return
    assert text == TEXT
    assert names


@FUZZ
@given(st.text(max_size=300) | mutated_text(NOTE))
def test_a_changed_checkpoint_verifies_only_as_it_was_or_raises_verification_error(
    note: str,
) -> None:
    try:
        checkpoint = verify_checkpoint(note, ORIGIN, LOG_KEY)
    except VerificationError:
        return
    assert checkpoint.to_text() == TEXT


@FUZZ
@given(st.text(max_size=120) | mutated_text(COSIGNATURE))
def test_a_changed_cosignature_line_raises_verification_error(line: str) -> None:
    try:
        verify_cosignature(TEXT, line, WITNESS)
    except VerificationError:
        return
    assert line.removesuffix("\n") == COSIGNATURE.removesuffix("\n")


@FUZZ
@given(
    st.text(max_size=100)
    | mutated_text(LOG.vkey)
    | mutated_text(format_signer_key(ORIGIN, WITNESS_KEY))
)
def test_verifier_and_signer_keys_parse_or_raise_protocol_error(text: str) -> None:
    for parse in (parse_verifier_key, parse_signer_key):
        try:
            parse(text)
        except ProtocolError:
            pass


def test_a_verifier_key_round_trips() -> None:
    assert parse_verifier_key(LOG.vkey).to_text() == LOG.vkey
    assert format_verifier_key(ORIGIN, LOG_KEY.public_key) == LOG.vkey


# --- the witness's add-checkpoint request -------------------------------------------


@FUZZ
@given(st.binary(max_size=400) | mutated_bytes(REQUEST.encode()))
def test_an_add_checkpoint_request_parses_or_raises_a_witness_error(body: bytes) -> None:
    status = 200
    try:
        AddCheckpointRequest.parse(body)
    except WitnessError as exc:
        status = exc.status
    assert status in {200, 400}


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory) -> Witness:
    """A witness that cosigned the log at size 4."""
    state: Path = tmp_path_factory.mktemp("witness") / "witness.json"
    witness = Witness("w.test", WITNESS_KEY, state, clock=lambda: 1_767_000_000)
    witness.follow(ORIGIN, LOG.vkey)
    witness.add_checkpoint(LOG.request(0, 4))
    return witness


@FUZZ
@given(body=mutated_bytes(REQUEST.encode()))
def test_the_witness_answers_any_changed_request_with_a_tlog_witness_status(
    witness: Witness, body: bytes
) -> None:
    try:
        line = witness.add_checkpoint(body)
    except WitnessError as exc:
        status = exc.status
    else:
        status = 200
        assert line.startswith("\u2014 w.test ")
    assert status in {200, 400, 403, 404, 409, 422}
    followed = witness.latest(ORIGIN)
    assert followed is not None
    assert followed.root == root_from_leaf_hashes(LOG.hashes[: followed.size])


# --- Merkle proofs, tiles and entry bundles -----------------------------------------

HASHES = LOG.hashes
ROOT = root_from_leaf_hashes(HASHES)
hash_lists = st.lists(st.binary(min_size=0, max_size=33), max_size=8)


@FUZZ
@given(
    index=st.integers(min_value=-2, max_value=12),
    size=st.integers(min_value=-2, max_value=12),
    proof=hash_lists | st.just(inclusion_proof_from_leaves(3, HASHES)),
    leaf=st.sampled_from(HASHES) | st.binary(max_size=33),
)
def test_an_inclusion_proof_verifies_or_raises_verification_error(
    index: int, size: int, proof: list[bytes], leaf: bytes
) -> None:
    # A proof is relative to the (size, root) pair a signed checkpoint vouches for: a root
    # alone does not fix the size (a tree of 9 and one of 10 can share a proof's shape).
    try:
        verify_inclusion(leaf, index, size, proof, ROOT)
    except VerificationError:
        pass


@FUZZ
@given(
    size1=st.integers(min_value=-2, max_value=12),
    size2=st.integers(min_value=-2, max_value=12),
    proof=hash_lists | st.just(consistency_proof_from_leaves(4, 9, HASHES)),
    root1=st.sampled_from([root_from_leaf_hashes(HASHES[:4]), bytes(32), b""]),
)
def test_a_consistency_proof_verifies_or_raises_verification_error(
    size1: int, size2: int, proof: list[bytes], root1: bytes
) -> None:
    try:
        verify_consistency(size1, size2, proof, root1, ROOT)
    except VerificationError:
        pass


ENTRY_BUNDLE = pack([leaf_hash(b"a"), b"", b"leaf three"])


@FUZZ
@given(
    data=st.binary(max_size=80) | mutated_bytes(ENTRY_BUNDLE),
    count=st.integers(min_value=0, max_value=5),
    wide=st.booleans(),
)
def test_an_entry_bundle_unpacks_or_raises_protocol_error(
    data: bytes, count: int, wide: bool
) -> None:
    try:
        unpack(data, count, wide=wide, what="entry bundle")
    except ProtocolError:
        pass


@FUZZ
@given(st.binary(max_size=200))
def test_a_hash_tile_splits_into_hashes_or_raises_protocol_error(data: bytes) -> None:
    try:
        hashes = list(iter_hashes(data, "tile/0/000"))
    except ProtocolError:
        return
    assert b"".join(hashes) == data


# --- SD-JWT parts, record files, offer values, safety numbers -----------------------

JWT = (
    ".".join(
        b64e(json.dumps(part).encode())
        for part in ({"alg": "EdDSA", "typ": "dc+sd-jwt"}, {"iss": "acc-1", "_sd": []})
    )
    + "."
    + b64e(bytes(64))
)
SD_JWT = JWT + "~" + b64e(b'["salt", "name", "value"]') + "~"


@FUZZ
@given(st.text(max_size=200) | mutated_text(SD_JWT))
def test_sd_jwt_parts_parse_or_raise_the_documented_errors(text: str) -> None:
    try:
        jwt, _ = split_sd_jwt(text)
    except ProtocolError:
        jwt = text
    try:
        parse_jwt(jwt, typ="dc+sd-jwt")
    except ProtocolError:
        pass
    try:
        verify_jwt(jwt, bytes(32), typ="dc+sd-jwt")
    except VerificationError:
        pass


RECORDS = json.dumps([{"name": "A. Person", "service_number": "12-34"}, {"rank": 3}]).encode()


@FUZZ
@given(st.binary(max_size=200) | json_bytes() | mutated_bytes(RECORDS))
def test_a_record_file_loads_or_raises_protocol_error(data: bytes) -> None:
    try:
        load_records(data)
    except ProtocolError:
        pass


@FUZZ
@given(
    spec=st.text(max_size=30) | mutated_text("1-50,77"),
    count=st.integers(min_value=0, max_value=100),
)
def test_record_and_field_specs_parse_or_raise_protocol_error(spec: str, count: int) -> None:
    try:
        numbers = parse_records_spec(spec, count)
    except ProtocolError:
        pass
    else:
        assert all(1 <= n <= count for n in numbers)
    try:
        parse_fields_spec(spec)
    except ProtocolError:
        pass


@FUZZ
@given(st.text(max_size=40) | mutated_text("1250000.50"))
def test_an_offer_value_parses_or_raises_protocol_error(text: str) -> None:
    try:
        parse_decimal(text)
    except ProtocolError:
        pass


KEY_A, KEY_B = bytes(range(32)), bytes(range(32, 64))
NUMBER = safety_number("acc-a", KEY_A, "acc-b", KEY_B)


@FUZZ
@given(st.text(max_size=80) | mutated_text(NUMBER))
def test_a_typed_safety_number_checks_or_raises_the_documented_errors(text: str) -> None:
    try:
        check_safety_number(text, "acc-a", KEY_A, "acc-b", KEY_B)
    except (ProtocolError, VerificationError):
        return
    assert "".join(text.split()) == "".join(NUMBER.split())


# --- padding, escrows, stored dossier issuances -------------------------------------


@FUZZ
@given(st.binary(max_size=600) | mutated_bytes(pad(b'{"type":"text"}')))
def test_message_padding_is_undone_or_raises_verification_error(data: bytes) -> None:
    try:
        unpad(data)
    except VerificationError:
        pass


OPENING = Opening(salt=b64e(bytes(32)), value="1250000.50", note="final")
ESCROW_KEY = EncryptionKey.from_seed(bytes(range(64, 96)))
ESCROW_CONTEXT = {
    "room_id": "room-1",
    "round_id": "round-1",
    "side": "a",
    "commitment": b64e(bytes(32)),
}
ESCROW = seal_escrow(OPENING, {"dev-mona": ESCROW_KEY.public_bytes()}, **ESCROW_CONTEXT)


@FUZZ
@given(st.binary(max_size=1100) | mutated_bytes(pad_opening(OPENING)))
def test_an_escrowed_opening_unpads_or_raises_verification_error(data: bytes) -> None:
    try:
        unpad_opening(data)
    except VerificationError:
        pass


@FUZZ
@given(st.text(max_size=80) | mutated_text(ESCROW["dev-mona"]))
def test_a_changed_escrow_opens_only_as_it_was_or_raises_verification_error(text: str) -> None:
    try:
        opened = open_escrow(text, [ESCROW_KEY], device_id="dev-mona", **ESCROW_CONTEXT)
    except VerificationError:
        return
    assert opened == OPENING


DOSSIER_KEY = SigningKey.from_bytes(bytes(range(96, 128)))
ISSUANCE = issue_dossier(
    [{"name": "N1", "rank": "cpl"}, {"name": "N2"}],
    key=DOSSIER_KEY,
    issuer="acc",
    device_id="dev",
    room_id="room-1",
    title="T",
    issued_at=1,
).issuance()


@FUZZ
@given(st.text(max_size=100) | mutated_text(ISSUANCE))
def test_a_changed_stored_issuance_loads_only_as_it_was_or_raises_verification_error(
    text: str,
) -> None:
    try:
        loaded = load_issued(text, issuer_key=DOSSIER_KEY.public_bytes(), room_id="room-1")
    except VerificationError:
        return
    # As it was, or short of disclosures a decoy could stand for (a trailing record, a
    # field): never anything the issuer did not sign and disclose.
    assert set(loaded.issuance().split("~")) <= set(ISSUANCE.split("~"))
    assert loaded.jwt == ISSUANCE.split("~", 1)[0]
    assert loaded.record_count >= 1


def test_a_stored_issuance_stripped_of_every_disclosure_fails_closed() -> None:
    # Found by Hypothesis: the JWT alone loaded as a dossier of no records.
    jwt = ISSUANCE.split("~", 1)[0] + "~"
    with pytest.raises(VerificationError, match="discloses no record"):
        load_issued(jwt, issuer_key=DOSSIER_KEY.public_bytes(), room_id="room-1")
