"""Sending and reading messages refuse what they must (docs/design.md §5, §9): the exact
recipient set of the current roster, the sender's own signature over header and
wraps, the room the envelope names, size limits; retries are idempotent; and a
refused send leaves nothing behind."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable

import httpx
import pytest
from sqlalchemy import text

from client_sdk.protocol.envelope import Envelope
from client_sdk.protocol.models import Side
from tests.api.conftest import Api, MakeApi
from tests.api.factories import (
    BAD_BASE64,
    Actor,
    Json,
    RoomSetup,
    answer,
    assert_bad_input,
    assert_error,
    bad_base64,
    create_room_body,
    envelope,
    flip_bit,
    nothing_written,
    publish_roster,
    resigned,
)

NO_SUCH_ROOM = {"error": {"code": "not_found", "message": "no such room"}}


def _messages(room: RoomSetup) -> str:
    return f"/v1/rooms/{room.room_id}/messages"


async def _refused_send(api: Api, room: RoomSetup, body: Json, *, by: Actor) -> str:
    """Send a body that must be refused as invalid (422); return the message."""
    async with nothing_written(api.app):
        response = await api.http.post(_messages(room), json=body, headers=by.headers)
    return assert_error(response, 422, "invalid")


def _json(sealed: Envelope) -> Json:
    return sealed.model_dump(mode="json")


# --- who may post and read ----------------------------------------------------------


async def test_non_member_cannot_post(api: Api) -> None:
    room = await api.room()
    carol = await api.actor(name="Carol")
    body = _json(envelope(room, carol, recipients=[*room.actors]))
    async with nothing_written(api.app):
        response = await api.http.post(_messages(room), json=body, headers=carol.headers)
    assert answer(response) == (404, NO_SUCH_ROOM)


async def test_non_member_gets_the_same_404_for_events_as_for_a_missing_room(api: Api) -> None:
    room = await api.room()
    carol = await api.actor(name="Carol")
    existing = await api.http.get(f"/v1/rooms/{room.room_id}/events", headers=carol.headers)
    missing = await api.http.get(f"/v1/rooms/{uuid.uuid4().hex}/events", headers=carol.headers)
    assert answer(existing) == (404, NO_SUCH_ROOM)
    assert answer(missing) == (404, NO_SUCH_ROOM)


async def test_observer_cannot_post(api: Api) -> None:
    room = await api.room()
    carol = await api.actor(name="Carol")
    await publish_roster(api.http, room, [*room.seated, (carol, Side.OBSERVER)])
    body = _json(envelope(room, carol))
    async with nothing_written(api.app):
        response = await api.http.post(_messages(room), json=body, headers=carol.headers)
    assert_error(response, 403, "forbidden")


async def test_observer_reads_events(api: Api) -> None:
    room = await api.room()
    carol = await api.actor(name="Carol")
    await publish_roster(api.http, room, [*room.seated, (carol, Side.OBSERVER)])
    response = await api.http.get(f"/v1/rooms/{room.room_id}/events", headers=carol.headers)
    assert [e["seq"] for e in response.json()["events"]] == [1, 2, 3]


# --- recipients and roster version ---------------------------------------------------


async def test_recipients_missing_a_member_device_are_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice, recipients=[room.mediator, room.alice]))
    message = await _refused_send(api, room, body, by=room.alice)
    assert "recipients" in message


async def test_recipients_with_a_device_outside_the_room_are_422(api: Api) -> None:
    room = await api.room()
    carol = await api.actor(name="Carol")
    body = _json(envelope(room, room.alice, recipients=[*room.actors, carol]))
    await _refused_send(api, room, body, by=room.alice)


async def test_recipients_listing_a_device_twice_are_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice, recipients=[*room.actors, room.bob]))
    assert len(body["header"]["recipients"]) == 4
    await _refused_send(api, room, body, by=room.alice)


async def test_recipients_of_a_removed_member_are_409_as_a_stale_roster(api: Api) -> None:
    room = await api.room()
    stale = _json(envelope(room, room.alice))
    await publish_roster(api.http, room, room.seated[:2])
    async with nothing_written(api.app):
        response = await api.http.post(_messages(room), json=stale, headers=room.alice.headers)
    assert_error(response, 409, "conflict", mentions="stale roster version")


async def test_roster_version_ahead_of_the_room_is_409(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice, roster_version=room.version + 1))
    async with nothing_written(api.app):
        response = await api.http.post(_messages(room), json=body, headers=room.alice.headers)
    assert_error(response, 409, "conflict")


async def test_too_many_recipients_is_413(make_api: MakeApi) -> None:
    api = await make_api(max_recipients=2)
    room = await api.room()
    body = _json(envelope(room, room.alice))
    async with nothing_written(api.app):
        response = await api.http.post(_messages(room), json=body, headers=room.alice.headers)
    assert_error(response, 413, "too_large", mentions="recipients")


# --- addressing and signatures ------------------------------------------------------


async def test_envelope_addressed_to_another_room_is_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice, room_id=uuid.uuid4().hex))
    message = await _refused_send(api, room, body, by=room.alice)
    assert "another room" in message


async def test_envelope_of_another_device_is_422(api: Api) -> None:
    room = await api.room()
    bobs = _json(envelope(room, room.bob))
    await _refused_send(api, room, bobs, by=room.alice)


async def test_unknown_channel_is_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice, channel="backroom"))
    await _refused_send(api, room, body, by=room.alice)


async def test_unsupported_envelope_version_is_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice))
    body["header"]["v"] = 2
    await _refused_send(api, room, body, by=room.alice)


async def test_envelope_signed_by_another_key_is_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice, signer=room.bob.keys.device_key))
    message = await _refused_send(api, room, body, by=room.alice)
    assert "signature" in message


async def test_envelope_with_a_flipped_signature_bit_is_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice))
    body["signature"] = flip_bit(body["signature"])
    await _refused_send(api, room, body, by=room.alice)


async def test_envelope_with_an_edited_header_is_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice))
    body["header"]["sent_at"] += 1
    await _refused_send(api, room, body, by=room.alice)


async def test_envelope_with_a_flipped_ciphertext_bit_is_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice))
    body["ciphertext"] = flip_bit(body["ciphertext"])
    message = await _refused_send(api, room, body, by=room.alice)
    assert "ciphertext" in message


async def test_envelope_with_a_flipped_key_wrap_bit_is_422(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice))
    body["wraps"][room.bob.device_id] = flip_bit(body["wraps"][room.bob.device_id])
    await _refused_send(api, room, body, by=room.alice)


async def test_key_wraps_that_differ_from_the_recipients_are_422(api: Api) -> None:
    room = await api.room()
    sealed = envelope(room, room.alice)
    wraps = {k: v for k, v in sealed.wraps.items() if k != room.bob.device_id}
    body = resigned(sealed, room.alice.keys.device_key, wraps=wraps)
    message = await _refused_send(api, room, body, by=room.alice)
    assert "wraps" in message


async def test_ciphertext_that_is_not_unpadded_base64url_is_refused(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice))
    for how in BAD_BASE64:
        bad = {**body, "ciphertext": bad_base64(body["ciphertext"], how)}
        async with nothing_written(api.app):
            response = await api.http.post(_messages(room), json=bad, headers=room.alice.headers)
        assert_bad_input(response)


# --- idempotency --------------------------------------------------------------------


async def test_same_envelope_sent_twice_lands_once_with_the_same_answer(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice))
    first = await api.http.post(_messages(room), json=body, headers=room.alice.headers)
    assert first.status_code == 201

    async with nothing_written(api.app):
        second = await api.http.post(_messages(room), json=body, headers=room.alice.headers)

    assert second.status_code == 201
    assert second.json() == first.json()
    assert (first.json()["seq"], first.json()["leaf_index"]) == (3, 2)


async def test_copies_of_a_send_waiting_together_for_the_room_land_once(api: Api) -> None:
    """Two copies of one envelope wait while the room is locked. Once it is free the
    first lands; the second's statement began before that commit, so on PostgreSQL it
    read "message id not used yet" and its insert meets the unique id: it must still
    get the first one's answer, not a 500."""
    database = api.app.state.services.messages.database
    if database.is_sqlite:
        pytest.skip("SQLite runs one write at a time: no statement waits inside a lock")
    room = await api.room()
    body = _json(envelope(room, room.alice))

    def post() -> Awaitable[httpx.Response]:
        return api.http.post(_messages(room), json=body, headers=room.alice.headers)

    async with database.write() as conn:
        await conn.execute(
            text("SELECT 1 FROM rooms WHERE id = :room FOR UPDATE"), {"room": room.room_id}
        )
        copies = [asyncio.ensure_future(post()) for _ in range(2)]
        for _ in range(1500):  # until both wait for the lock, at most 30 s
            async with database.read() as probe:
                waiting = await probe.scalar(text(_WAITING_FOR_A_LOCK))
            if waiting == 2:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the two sends never waited for the room's lock")
    first, second = await asyncio.wait_for(asyncio.gather(*copies), timeout=60)

    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json() == second.json()
    events = await api.http.get(f"/v1/rooms/{room.room_id}/events", headers=room.bob.headers)
    ids = [e["message_id"] for e in events.json()["events"] if e.get("message_id")]
    assert ids.count(body["header"]["message_id"]) == 1


_WAITING_FOR_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def test_retry_after_a_roster_change_gets_the_original_answer(api: Api) -> None:
    room = await api.room()
    body = _json(envelope(room, room.alice))
    first = await api.http.post(_messages(room), json=body, headers=room.alice.headers)
    await publish_roster(api.http, room, room.seated[:2])

    second = await api.http.post(_messages(room), json=body, headers=room.alice.headers)

    assert (second.status_code, second.json()["seq"]) == (201, first.json()["seq"])


async def test_reused_message_id_with_another_envelope_is_409(api: Api) -> None:
    room = await api.room()
    first = envelope(room, room.alice, text="first")
    await api.http.post(
        _messages(room), json=first.model_dump(mode="json"), headers=room.alice.headers
    )
    other = _json(envelope(room, room.alice, text="second", message_id=first.header.message_id))
    async with nothing_written(api.app):
        response = await api.http.post(_messages(room), json=other, headers=room.alice.headers)
    assert_error(response, 409, "conflict")


async def test_message_id_used_by_another_member_is_409(api: Api) -> None:
    room = await api.room()
    alices = envelope(room, room.alice)
    await api.http.post(
        _messages(room), json=alices.model_dump(mode="json"), headers=room.alice.headers
    )
    bobs = _json(envelope(room, room.bob, message_id=alices.header.message_id))
    async with nothing_written(api.app):
        response = await api.http.post(_messages(room), json=bobs, headers=room.bob.headers)
    assert_error(response, 409, "conflict")


async def test_message_ids_are_scoped_to_their_room(api: Api) -> None:
    room = await api.room()
    sent = envelope(room, room.mediator)
    await api.http.post(
        _messages(room), json=sent.model_dump(mode="json"), headers=room.mediator.headers
    )
    body, signed = create_room_body(room.mediator, title="Second room")
    created = await api.http.post("/v1/rooms", json=body, headers=room.mediator.headers)
    other = RoomSetup(
        room_id=created.json()["room_id"],
        title="Second room",
        mediator=room.mediator,
        alice=room.alice,
        bob=room.bob,
        current=signed,
        version=1,
        seated=[(room.mediator, Side.MEDIATOR)],
    )

    response = await api.http.post(
        _messages(other),
        json=_json(envelope(other, room.mediator, message_id=sent.header.message_id)),
        headers=room.mediator.headers,
    )

    assert (response.status_code, response.json()["seq"]) == (201, 2)


# --- size limits --------------------------------------------------------------------


def _big(room: RoomSetup, sender: Actor, size: int) -> bytes:
    return envelope(room, sender, text="x" * size).model_dump_json().encode()


async def test_message_under_the_size_limit_is_accepted(make_api: MakeApi) -> None:
    api = await make_api(max_message_bytes=64 * 1024)
    room = await api.room()
    content = _big(room, room.alice, 20_000)
    response = await api.http.post(
        _messages(room),
        content=content,
        headers={**room.alice.headers, "content-type": "application/json"},
    )
    assert response.status_code == 201


async def test_oversized_message_with_a_content_length_is_413(make_api: MakeApi) -> None:
    api = await make_api(max_message_bytes=64 * 1024)
    room = await api.room()
    content = _big(room, room.alice, 40_000)
    async with nothing_written(api.app):
        response = await api.http.post(
            _messages(room),
            content=content,
            headers={**room.alice.headers, "content-type": "application/json"},
        )
    assert int(response.request.headers["content-length"]) > 64 * 1024
    assert_error(response, 413, "too_large")


async def test_oversized_chunked_message_is_413(make_api: MakeApi) -> None:
    api = await make_api(max_message_bytes=64 * 1024)
    room = await api.room()
    content = _big(room, room.alice, 40_000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 8192):
            yield content[start : start + 8192]

    async with nothing_written(api.app):
        response = await api.http.post(
            _messages(room),
            content=chunks(),
            headers={**room.alice.headers, "content-type": "application/json"},
        )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "too_large")


# --- reading events -----------------------------------------------------------------


async def test_events_query_out_of_range_is_422(api: Api) -> None:
    room = await api.room()
    for name, value in [
        ("after", "-1"),
        ("after", "two"),
        ("after", str(2**70)),
        ("limit", "0"),
        ("limit", "501"),
    ]:
        response = await api.http.get(
            f"/v1/rooms/{room.room_id}/events", params={name: value}, headers=room.alice.headers
        )
        assert_error(response, 422, "invalid", mentions=name)


async def test_refused_sends_leave_the_room_where_it_was(api: Api) -> None:
    room = await api.room()
    await api.http.post(
        _messages(room),
        json=_json(envelope(room, room.alice, channel="backroom")),
        headers=room.alice.headers,
    )
    response = await api.http.get(f"/v1/rooms/{room.room_id}", headers=room.alice.headers)
    events = await api.http.get(f"/v1/rooms/{room.room_id}/events", headers=room.alice.headers)
    assert (response.json()["roster_version"], response.json()["last_seq"]) == (2, 2)
    assert [e["seq"] for e in events.json()["events"]] == [1, 2]
