"""Hypothesis over the protocol's JSON parsers: malformed input raises the documented error
(`client_sdk.protocol.errors`), never another exception (a pydantic `ValidationError`,
a `KeyError`, a `json.JSONDecodeError`...).

Log leaves, envelopes and their content, signed statements, instrument acts and
stored states, documents, stream frames, every wire model of
`client_sdk.protocol.wire`, and audit bundles (JSON and tiled). Input is made
from nothing (any JSON, or a model's own field names with any values) and by
changing one node of a valid example. The budget is `tests.support.fuzz`'s profile.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import client_sdk.protocol.wire as wire_package
from client_sdk.audit import parse_bundle, verify_bundle
from client_sdk.audit.archive import open_tiled
from client_sdk.protocol.content import parse_content
from client_sdk.protocol.documents import DocumentContent, open_document, seal_document
from client_sdk.protocol.encoding import b64e, canonical_json
from client_sdk.protocol.envelope import (
    Envelope,
    Recipient,
    check_envelope,
    decrypt_content,
    parse_envelope,
    seal_envelope,
    unwrap_content_key,
)
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.instruments.acts import (
    dump_state,
    load_state,
    parse_act,
    sign_act,
    verify_act,
)
from client_sdk.protocol.instruments.receipts import Acknowledged, ReceiptAct
from client_sdk.protocol.keys import EncryptionKey, SigningKey
from client_sdk.protocol.leaf import LogLeaf, parse_leaf
from client_sdk.protocol.models import Role
from client_sdk.protocol.statements import (
    Registration,
    SignedStatement,
    parse_statement,
    sign_statement,
    verify_statement,
)
from client_sdk.protocol.wire.parse import parse_answer
from client_sdk.protocol.wire.stream import PongFrame, parse_server_frame
from tests.audit import synthetic
from tests.support.fuzz import (
    FUZZ,
    json_bytes,
    json_values,
    mutated_bytes,
    mutated_json,
)

SENDER = SigningKey.from_bytes(bytes(range(32)))
RECIPIENT = EncryptionKey.from_seed(bytes(range(32, 64)))
ENVELOPE = seal_envelope(
    content={"type": "text", "text": "Four detainees."},
    room_id="room-1",
    channel="plenary",
    roster_version=3,
    sender_device="dev-bob",
    sender_key=SENDER,
    recipients=[Recipient("dev-alice", RECIPIENT.public_bytes())],
    sent_at=1_767_000_000_000,
)
ENVELOPE_JSON = ENVELOPE.model_dump(mode="json")
LEAF = LogLeaf(
    origin="parley.test/rooms/room-1",
    index=4,
    type="message",
    actor_device="dev-bob",
    server_time=1_767_000_000_001,
    payload_sha256=b64e(bytes(32)),
    signature=b64e(bytes(64)),
).to_bytes()
REGISTRATION = sign_statement(
    SENDER,
    Registration(
        account_id="acc-bob",
        account_key=b64e(SENDER.public_bytes()),
        role=Role.PARTY,
        name="Bob",
        issued_at=1_767_000_000_000,
    ),
)
ACT = sign_act(
    SENDER,
    ReceiptAct(
        room_id="room-1",
        instrument_id="receipt-4",
        roster_version=3,
        signer_device="dev-bob",
        issued_at=1_767_000_000_000,
        seq=4,
        leaf_sha256=b64e(bytes(32)),
        account_id="acc-bob",
    ),
)
STATE = dump_state(Acknowledged(target_seq=4, account_id="acc-bob", receipt_seq=5, server_time=1))
CONTENT_KEY = bytes(range(32))
DOCUMENT, DOCUMENT_CIPHERTEXT = seal_document(
    CONTENT_KEY,
    b"minutes " * 40,
    file_id="file-1",
    name="minutes.txt",
    media_type="text/plain",
    chunk_size=64,
)


def envelope_or_none(value: Any) -> Envelope | None:
    try:
        return parse_envelope(value)
    except ProtocolError:
        return None


# --- leaves, envelopes, content -----------------------------------------------------


@FUZZ
@given(st.binary(max_size=300) | json_bytes() | mutated_bytes(LEAF))
def test_a_leaf_parses_only_if_canonical_or_raises_protocol_error(data: bytes) -> None:
    try:
        leaf = parse_leaf(data)
    except ProtocolError:
        return
    assert leaf.to_bytes() == data


@FUZZ
@given(json_values | mutated_json(ENVELOPE_JSON))
def test_an_envelope_parses_or_raises_protocol_error(value: Any) -> None:
    envelope_or_none(value)


@FUZZ
@given(mutated_json(ENVELOPE_JSON))
def test_a_changed_envelope_fails_its_checks_with_verification_error(value: Any) -> None:
    envelope = envelope_or_none(value)
    if envelope is None or envelope == ENVELOPE:
        return
    try:
        check_envelope(envelope, SENDER.public_bytes())
        key = unwrap_content_key(envelope, recipient_device="dev-alice", recipient_key=RECIPIENT)
        decrypt_content(envelope, key)
    except VerificationError:
        return
    # What still opens is what was sealed: only fields outside the signature may differ.
    assert envelope.signed_bytes() == ENVELOPE.signed_bytes()


@FUZZ
@given(
    json_values
    | mutated_json({"type": "text", "text": "x"})
    | mutated_json(DOCUMENT.model_dump(mode="json"))
    | mutated_json({"type": "dossier-commit", "dossier_id": "d1", "jwt": "a.b.c"})
)
def test_message_content_parses_or_raises_protocol_error(value: Any) -> None:
    if not isinstance(value, dict):
        value = {"type": value}
    try:
        parse_content(value)
    except ProtocolError:
        pass


@FUZZ
@given(
    data=mutated_bytes(DOCUMENT_CIPHERTEXT), document=mutated_json(DOCUMENT.model_dump(mode="json"))
)
def test_a_changed_document_fails_with_the_documented_errors(data: bytes, document: Any) -> None:
    try:
        content = DocumentContent.model_validate(document)
    except ValueError:  # pydantic's ValidationError: parse_content turns it into ProtocolError
        content = DOCUMENT
    try:
        plaintext = open_document(CONTENT_KEY, content, data)
    except (ProtocolError, VerificationError):
        return
    assert plaintext == b"minutes " * 40


# --- statements, instrument acts, stored states -------------------------------------


@FUZZ
@given(mutated_json(REGISTRATION.model_dump(mode="json")) | json_values)
def test_a_signed_statement_parses_or_raises_the_documented_errors(value: Any) -> None:
    try:
        signed = SignedStatement.model_validate(value)
    except ValueError:
        return  # the wire parsers turn this into ProtocolError (below)
    try:
        parse_statement(signed, Registration)
    except ProtocolError:
        pass
    try:
        verify_statement(signed, SENDER.public_bytes(), Registration)
    except VerificationError:
        pass


@FUZZ
@given(mutated_json(ACT.model_dump(mode="json")))
def test_an_instrument_act_parses_or_raises_the_documented_errors(value: Any) -> None:
    try:
        signed = SignedStatement.model_validate(value)
    except ValueError:
        return
    try:
        parse_act(signed)
    except ProtocolError:
        pass
    try:
        verify_act(signed, SENDER.public_bytes())
    except VerificationError:
        pass


@FUZZ
@given(
    st.text(max_size=200)
    | mutated_bytes(STATE.encode()).map(lambda b: b.decode("utf-8", "replace"))
)
def test_a_stored_instrument_state_loads_or_raises_protocol_error(text: str) -> None:
    try:
        load_state(text)
    except ProtocolError:
        pass


# --- the wire: stream frames and every answer model ---------------------------------


@FUZZ
@given(
    st.binary(max_size=200)
    | json_bytes()
    | mutated_json(PongFrame().model_dump(mode="json")).map(lambda v: json.dumps(v).encode())
)
def test_a_stream_frame_parses_or_raises_protocol_error(data: bytes) -> None:
    try:
        parse_server_frame(data)
    except ProtocolError:
        pass


def _wire_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(wire_package.__path__):
        module = importlib.import_module(f"{wire_package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseModel)
                and value.__module__.startswith(wire_package.__name__)
            ):
                found[f"{value.__module__}.{name}"] = value
    return [found[key] for key in sorted(found)]


WIRE_MODELS = _wire_models()


def _shaped_like(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Objects with some of the model's own fields, any values, and maybe a stranger."""
    fields = {name: json_values for name in model.model_fields}
    return st.fixed_dictionaries({}, optional={**fields, "unexpected": json_values})


def test_the_wire_has_models_to_fuzz() -> None:
    assert len(WIRE_MODELS) > 30


@settings(FUZZ, max_examples=FUZZ.max_examples * 5)  # shared by every model of the wire
@given(data=st.data())
def test_every_wire_model_parses_an_answer_or_raises_protocol_error(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(WIRE_MODELS), label="model")
    value = data.draw(json_values | _shaped_like(model) | json_bytes(), label="answer")
    try:
        parse_answer(model, value, what="GET /fuzz")
    except ProtocolError:
        pass


# --- audit bundles ------------------------------------------------------------------

ROOM = synthetic.room(messages=3)
JSON_BUNDLE = ROOM.bundle()


@FUZZ
@given(st.binary(max_size=200) | json_bytes())
def test_anything_that_is_not_a_bundle_raises_protocol_error(data: bytes) -> None:
    try:
        parse_bundle(data)
    except ProtocolError:
        pass


@FUZZ
@given(mutated_json(JSON_BUNDLE.model_dump(mode="json")))
def test_a_changed_json_bundle_is_refused_with_the_documented_errors(value: Any) -> None:
    try:
        bundle = parse_bundle(canonical_json(value))
        verify_bundle(bundle)
    except (ProtocolError, VerificationError):
        pass


@pytest.fixture(scope="module")
def tiled(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The room's tiled bundle, as bytes."""
    path: Path = tmp_path_factory.mktemp("tiled") / "room.bundle"
    ROOM.write_tiled(path)
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_a_changed_tiled_bundle_is_refused_with_the_documented_errors(
    tiled: bytes, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    changed = data.draw(mutated_bytes(tiled), label="bundle bytes")
    path = tmp_path_factory.mktemp("changed") / "room.bundle"
    path.write_bytes(changed)
    try:
        verify_bundle(open_tiled(path), workers=1)
    except (ProtocolError, VerificationError):
        pass


def test_the_examples_are_valid() -> None:
    assert parse_leaf(LEAF).to_bytes() == LEAF
    check_envelope(ENVELOPE, SENDER.public_bytes())
    assert verify_act(ACT, SENDER.public_bytes()).act == "receipt"
    assert load_state(STATE).kind == "acknowledged"
    assert parse_bundle(canonical_json(JSON_BUNDLE.model_dump(mode="json"))) == JSON_BUNDLE
