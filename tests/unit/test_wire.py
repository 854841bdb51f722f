"""Parsing server answers into the shared wire models: a bad answer is one `ProtocolError`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.mediation import Status
from client_sdk.protocol.statements import Mode
from client_sdk.protocol.wire import parse_answer, parse_answers
from client_sdk.protocol.wire.errors import ErrorBody, error_body
from client_sdk.protocol.wire.events import EventKind, EventsPage
from client_sdk.protocol.wire.identity import AccountSummary, TokenResponse
from client_sdk.protocol.wire.rooms import RoomStateOut, RosterOut
from client_sdk.protocol.wire.stream import (
    AuthFrame,
    BatchFrame,
    CloseCode,
    PingFrame,
    PongFrame,
    ReadyFrame,
    parse_client_frame,
    parse_server_frame,
)

_TOKEN: dict[str, Any] = {"token": "opaque", "expires_at": 1_700_000_000_000}
_STATEMENT: dict[str, Any] = {"body": {"type": "roster"}, "signature": "A" * 86}
_EVENT: dict[str, Any] = {
    "seq": 1,
    "kind": "roster",
    "channel": None,
    "message_id": None,
    "sender_device": "dev1",
    "leaf_index": 0,
    "created_at": 5,
    "payload": {"any": "thing"},
    "leaf": "AAAA",
    "inclusion_proof": [],
}
_PAGE: dict[str, Any] = {
    "events": [_EVENT],
    "next_after": 1,
    "size": 1,
    "checkpoint": "note",
    "since": 0,
    "consistency_proof": [],
}


def test_an_answer_parses_from_bytes_text_or_loaded_json() -> None:
    raw = json.dumps(_TOKEN)
    for data in (raw.encode(), raw, _TOKEN):
        assert parse_answer(TokenResponse, data, what="token") == TokenResponse(**_TOKEN)


def test_truncated_json_is_a_protocol_error_naming_the_answer() -> None:
    with pytest.raises(ProtocolError, match=r"^POST /v1/auth/token: not UTF-8 JSON"):
        parse_answer(TokenResponse, json.dumps(_TOKEN).encode()[:-3], what="POST /v1/auth/token")


def test_bytes_that_are_not_utf8_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not UTF-8 JSON"):
        parse_answer(TokenResponse, b'{"token": "\xff"}', what="token")


def test_json_nested_too_deeply_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="nested too deeply"):
        parse_answer(TokenResponse, b"[" * 100_000, what="token")


def test_a_duplicate_key_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="repeats the member 'token'"):
        parse_answer(TokenResponse, b'{"token": "a", "token": "b", "expires_at": 1}', what="t")


def test_nan_is_not_json() -> None:
    with pytest.raises(ProtocolError, match="NaN, which is not a JSON number"):
        parse_answer(TokenResponse, b'{"token": "a", "expires_at": NaN}', what="t")


def test_a_missing_field_is_a_protocol_error_naming_it() -> None:
    with pytest.raises(
        ProtocolError, match=r"^token: unexpected answer: expires_at: Field required"
    ):
        parse_answer(TokenResponse, {"token": "opaque"}, what="token")


def test_an_integer_sent_as_a_string_is_refused() -> None:
    with pytest.raises(ProtocolError, match="expires_at"):
        parse_answer(TokenResponse, {**_TOKEN, "expires_at": "5"}, what="token")


def test_a_field_a_newer_server_adds_to_an_answer_is_ignored() -> None:
    parsed = parse_answer(TokenResponse, {**_TOKEN, "refresh_hint": 3}, what="token")
    assert parsed == TokenResponse(**_TOKEN)


def test_an_unknown_field_inside_a_signed_statement_is_refused() -> None:
    answer = {"version": 1, "seq": 1, "roster": _STATEMENT}
    assert parse_answer(RosterOut, answer, what="roster").roster.body == {"type": "roster"}
    answer = {**answer, "roster": {**_STATEMENT, "extra": 1}}
    with pytest.raises(ProtocolError, match=r"roster\.extra: Extra inputs are not permitted"):
        parse_answer(RosterOut, answer, what="roster")


def test_answers_are_frozen() -> None:
    parsed = parse_answer(TokenResponse, _TOKEN, what="token")
    with pytest.raises(ValidationError):
        parsed.token = "other"  # type: ignore[misc]


def test_enumerated_fields_parse_into_their_enums() -> None:
    state = parse_answer(
        RoomStateOut,
        {"mode": "shuttle", "status": "locked", "caucuses": [], "muted": []},
        what="state",
    )
    assert (state.mode, state.status) == (Mode.SHUTTLE, Status.LOCKED)
    page = parse_answer(EventsPage, _PAGE, what="events")
    assert page.events[0].kind is EventKind.ROSTER


def test_an_unknown_event_kind_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match=r"events\.0\.kind"):
        parse_answer(EventsPage, {**_PAGE, "events": [{**_EVENT, "kind": "gossip"}]}, what="e")


def test_a_list_answer_parses_each_item() -> None:
    rows = [{"account_id": "a1", "name": "Alice", "role": "party"}]
    assert [r.name for r in parse_answers(AccountSummary, json.dumps(rows), what="a")] == ["Alice"]
    with pytest.raises(ProtocolError, match=r"^accounts: unexpected answer: 0\.role"):
        parse_answers(AccountSummary, [{**rows[0], "role": "king"}], what="accounts")
    with pytest.raises(ProtocolError, match="unexpected answer"):
        parse_answers(AccountSummary, {"not": "a list"}, what="accounts")


def test_the_error_body_round_trips() -> None:
    body = error_body("not_found", "no such room", "req-1").model_dump(mode="json")
    detail = {"code": "not_found", "message": "no such room", "request_id": "req-1"}
    assert body == {"error": detail}
    assert parse_answer(ErrorBody, body, what="error").error.code == "not_found"


def test_stream_frames_parse_by_type() -> None:
    assert parse_server_frame('{"type": "ready"}') == ReadyFrame()
    assert parse_server_frame(b'{"type": "pong"}') == PongFrame()
    frame = parse_server_frame(json.dumps({"type": "batch", **_PAGE}))
    assert isinstance(frame, BatchFrame)
    assert frame.events[0].seq == 1


@pytest.mark.parametrize(
    ("raw", "mentions"),
    [
        ('{"type": "gossip"}', "does not match any of the expected tags"),
        ('{"type": "batch"}', "Field required"),
        ('{"type": "rea', "not UTF-8 JSON"),
        ("[]", "unexpected answer"),
    ],
)
def test_a_bad_stream_frame_is_a_protocol_error(raw: str, mentions: str) -> None:
    with pytest.raises(ProtocolError, match=mentions):
        parse_server_frame(raw)


def test_client_frames_parse_by_type() -> None:
    assert parse_client_frame('{"type": "ping"}') == PingFrame()
    assert parse_client_frame('{"type": "auth", "token": "t"}') == AuthFrame(token="t")


@pytest.mark.parametrize(
    "raw",
    [
        "ping",
        "[]",
        "null",
        '{"type": "subscribe"}',
        '{"type": "ping", "extra": 1}',
        '{"type": "auth", "token": ""}',
        '{"type": "auth", "token": 1}',
        '{"type": "ping", "type": "ping"}',
    ],
)
def test_a_bad_client_frame_is_a_protocol_error(raw: str) -> None:
    with pytest.raises(ProtocolError, match="client frame"):
        parse_client_frame(raw)


def test_close_codes_mirror_http_statuses() -> None:
    assert CloseCode.NOT_FOUND.http_status == 404
    assert CloseCode.OVERFLOW.http_status is None
    assert CloseCode.INTERNAL_ERROR.http_status is None
    assert CloseCode.GOING_AWAY.http_status is None  # a shutdown: resume elsewhere
    assert {c for c in CloseCode if c.fatal} == {
        CloseCode.MALFORMED,
        CloseCode.FORBIDDEN,
        CloseCode.NOT_FOUND,
        CloseCode.CONFLICT,
        CloseCode.TOO_LARGE,
        CloseCode.INVALID,
    }
