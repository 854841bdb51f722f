"""Rooms and rosters refuse what they must (docs/design.md §4, §9): only mediators create
rooms and sign rosters, every roster is checked against the directory and the
chain before it, non-members get the same 404 as for a room that does not
exist, and a refused request leaves nothing behind."""

from __future__ import annotations

import uuid

import httpx

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import Roster, RosterDevice, sign_statement
from tests.api.conftest import Api
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
    dump,
    flip_bit,
    nothing_written,
    roster,
)

NO_SUCH_ROOM = {"error": {"code": "not_found", "message": "no such room"}}


def _roster_body(room: RoomSetup, statement: Roster, *, key: SigningKey | None = None) -> Json:
    return {"roster": dump(sign_statement(key or room.mediator.keys.device_key, statement))}


async def _post_roster(
    api: Api, room: RoomSetup, body: Json, *, by: Actor | None = None
) -> httpx.Response:
    """Post a roster body that must be refused, checking that nothing is written."""
    async with nothing_written(api.app):
        return await api.http.post(
            f"/v1/rooms/{room.room_id}/rosters", json=body, headers=(by or room.mediator).headers
        )


async def _refused_roster(
    api: Api, room: RoomSetup, statement: Roster, *, status: int, code: str, by: Actor | None = None
) -> str:
    body = _roster_body(room, statement, key=(by or room.mediator).keys.device_key)
    return assert_error(await _post_roster(api, room, body, by=by), status, code)


# --- creating rooms -----------------------------------------------------------------


async def test_party_cannot_create_a_room(api: Api) -> None:
    alice = await api.actor()
    body, _ = create_room_body(alice)
    async with nothing_written(api.app):
        response = await api.http.post("/v1/rooms", json=body, headers=alice.headers)
    assert_error(response, 403, "forbidden")


async def test_first_roster_must_be_version_1(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    statement = roster(
        room_id=uuid.uuid4().hex,
        version=2,
        prev_hash=None,
        title="Talks",
        members=[mediator.member(Side.MEDIATOR)],
        signer=mediator,
    )
    body = {"roster": dump(sign_statement(mediator.keys.device_key, statement))}
    async with nothing_written(api.app):
        response = await api.http.post("/v1/rooms", json=body, headers=mediator.headers)
    assert_error(response, 422, "invalid", mentions="version 1")


async def test_creating_mediator_must_be_in_the_first_roster(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    other = await api.actor(Role.MEDIATOR, "Max")
    statement = roster(
        room_id=uuid.uuid4().hex,
        version=1,
        prev_hash=None,
        title="Talks",
        members=[other.member(Side.MEDIATOR)],
        signer=mediator,
    )
    body = {"roster": dump(sign_statement(mediator.keys.device_key, statement))}
    async with nothing_written(api.app):
        response = await api.http.post("/v1/rooms", json=body, headers=mediator.headers)
    assert_error(response, 403, "forbidden")


async def test_first_roster_signed_by_another_key_is_422(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    _, signed = create_room_body(mediator)
    forged = sign_statement(mediator.keys.account_key, Roster.model_validate(signed.body))
    async with nothing_written(api.app):
        response = await api.http.post(
            "/v1/rooms", json={"roster": dump(forged)}, headers=mediator.headers
        )
    assert_error(response, 422, "invalid", mentions="signature")


async def test_first_roster_naming_another_signer_device_is_422(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    other = await api.actor(Role.MEDIATOR, "Max")
    statement = roster(
        room_id=uuid.uuid4().hex,
        version=1,
        prev_hash=None,
        title="Talks",
        members=[mediator.member(Side.MEDIATOR), other.member(Side.MEDIATOR)],
        signer=other,
    )
    body = {"roster": dump(sign_statement(other.keys.device_key, statement))}
    async with nothing_written(api.app):
        response = await api.http.post("/v1/rooms", json=body, headers=mediator.headers)
    assert_error(response, 422, "invalid", mentions="signed by the device that submits")


async def test_room_id_in_use_is_409(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    body, signed = create_room_body(mediator)
    assert (
        await api.http.post("/v1/rooms", json=body, headers=mediator.headers)
    ).status_code == 201
    again, _ = create_room_body(mediator, room_id=str(signed.body["room_id"]))
    async with nothing_written(api.app):
        response = await api.http.post("/v1/rooms", json=again, headers=mediator.headers)
    assert_error(response, 409, "conflict")


async def test_room_id_of_the_directory_log_is_409(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    body, _ = create_room_body(mediator, room_id="directory")
    async with nothing_written(api.app):
        response = await api.http.post("/v1/rooms", json=body, headers=mediator.headers)
    assert_error(response, 409, "conflict")


async def test_room_title_with_a_nul_character_is_422(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    body, _ = create_room_body(mediator, title="Exchange\x00talks")
    async with nothing_written(api.app):
        response = await api.http.post("/v1/rooms", json=body, headers=mediator.headers)
    assert_error(response, 422, "invalid", mentions="title")


async def test_roster_version_as_a_string_is_422(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    body, _ = create_room_body(mediator)
    body["roster"]["body"]["version"] = "1"
    async with nothing_written(api.app):
        response = await api.http.post("/v1/rooms", json=body, headers=mediator.headers)
    assert_error(response, 422, "invalid")


async def test_roster_with_an_unknown_field_in_its_body_is_422(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    body, _ = create_room_body(mediator)
    body["roster"]["body"]["listeners"] = ["server"]
    async with nothing_written(api.app):
        response = await api.http.post("/v1/rooms", json=body, headers=mediator.headers)
    assert_error(response, 422, "invalid")


# --- reading rooms ------------------------------------------------------------------


async def test_non_member_gets_the_same_answer_as_for_a_room_that_does_not_exist(
    api: Api,
) -> None:
    room = await api.room()
    carol = await api.actor(name="Carol")
    existing = await api.http.get(f"/v1/rooms/{room.room_id}", headers=carol.headers)
    missing = await api.http.get(f"/v1/rooms/{uuid.uuid4().hex}", headers=carol.headers)
    assert answer(existing) == (404, NO_SUCH_ROOM)
    assert answer(missing) == (404, NO_SUCH_ROOM)


async def test_non_member_gets_404_for_a_roster(api: Api) -> None:
    room = await api.room()
    carol = await api.actor(name="Carol")
    response = await api.http.get(f"/v1/rooms/{room.room_id}/rosters/1", headers=carol.headers)
    assert answer(response) == (404, NO_SUCH_ROOM)


async def test_removed_member_gets_404_for_the_room(api: Api) -> None:
    room = await api.room()
    without_bob = room.members()[:2]
    body = _roster_body(room, room.next_roster(members=without_bob))
    response = await api.http.post(
        f"/v1/rooms/{room.room_id}/rosters", json=body, headers=room.mediator.headers
    )
    assert response.status_code == 201

    response = await api.http.get(f"/v1/rooms/{room.room_id}", headers=room.bob.headers)

    assert answer(response) == (404, NO_SUCH_ROOM)


async def test_roster_version_the_room_never_had_is_404(api: Api) -> None:
    room = await api.room()
    response = await api.http.get(f"/v1/rooms/{room.room_id}/rosters/3", headers=room.alice.headers)
    assert_error(response, 404, "not_found")


async def test_roster_version_beyond_any_integer_column_is_404(api: Api) -> None:
    room = await api.room()
    response = await api.http.get(
        f"/v1/rooms/{room.room_id}/rosters/{2**40}", headers=room.alice.headers
    )
    assert_error(response, 404, "not_found")


async def test_roster_version_that_is_not_an_integer_is_422(api: Api) -> None:
    room = await api.room()
    response = await api.http.get(
        f"/v1/rooms/{room.room_id}/rosters/two", headers=room.alice.headers
    )
    assert_error(response, 422, "invalid", mentions="version")


async def test_room_id_with_a_nul_character_is_refused(api: Api) -> None:
    alice = await api.actor()
    response = await api.http.get("/v1/rooms/room%00id", headers=alice.headers)
    assert_error(response, 422, "invalid", mentions="room_id")


# --- roster updates -----------------------------------------------------------------


async def test_non_member_mediator_cannot_update_the_roster(api: Api) -> None:
    room = await api.room()
    outsider = await api.actor(Role.MEDIATOR, "Max")
    statement = room.next_roster(signer=outsider)
    response = await _post_roster(
        api, room, _roster_body(room, statement, key=outsider.keys.device_key), by=outsider
    )
    assert answer(response) == (404, NO_SUCH_ROOM)


async def test_party_cannot_sign_the_roster(api: Api) -> None:
    room = await api.room()
    await _refused_roster(
        api, room, room.next_roster(signer=room.alice), status=403, code="forbidden", by=room.alice
    )


async def test_roster_signed_by_another_key_is_422(api: Api) -> None:
    room = await api.room()
    body = _roster_body(room, room.next_roster(), key=room.mediator.keys.account_key)
    assert_error(await _post_roster(api, room, body), 422, "invalid", mentions="signature")


async def test_roster_with_a_flipped_signature_bit_is_422(api: Api) -> None:
    room = await api.room()
    body = _roster_body(room, room.next_roster())
    body["roster"]["signature"] = flip_bit(body["roster"]["signature"])
    assert_error(await _post_roster(api, room, body), 422, "invalid")


async def test_roster_signature_that_is_not_unpadded_base64url_is_refused(api: Api) -> None:
    room = await api.room()
    body = _roster_body(room, room.next_roster())
    for how in BAD_BASE64:
        bad = {
            "roster": {**body["roster"], "signature": bad_base64(body["roster"]["signature"], how)}
        }
        assert_bad_input(await _post_roster(api, room, bad))


async def test_roster_with_an_edited_body_is_422(api: Api) -> None:
    room = await api.room()
    body = _roster_body(room, room.next_roster(members=room.members()[:2]))
    body["roster"]["body"]["members"].append(room.bob.member(Side.B).model_dump(mode="json"))
    assert_error(await _post_roster(api, room, body), 422, "invalid")


async def test_roster_naming_another_signer_device_is_422(api: Api) -> None:
    room = await api.room()
    statement = room.next_roster(signer=room.bob)
    assert_error(await _post_roster(api, room, _roster_body(room, statement)), 422, "invalid")


async def test_roster_at_the_current_version_is_409(api: Api) -> None:
    room = await api.room()
    statement = room.next_roster(version=room.version)
    message = await _refused_roster(api, room, statement, status=409, code="conflict")
    assert "stale" in message


async def test_roster_skipping_a_version_is_409(api: Api) -> None:
    room = await api.room()
    await _refused_roster(
        api, room, room.next_roster(version=room.version + 2), status=409, code="conflict"
    )


async def test_roster_not_chained_to_the_current_version_is_422(api: Api) -> None:
    room = await api.room()
    statement = room.next_roster(prev_hash=b64e(bytes(32)))
    await _refused_roster(api, room, statement, status=422, code="invalid")


async def test_roster_for_another_room_is_422(api: Api) -> None:
    room = await api.room()
    statement = room.next_roster(room_id=uuid.uuid4().hex)
    await _refused_roster(api, room, statement, status=422, code="invalid")


async def test_roster_changing_the_title_is_422(api: Api) -> None:
    room = await api.room()
    statement = room.next_roster().model_copy(update={"title": "Other talks"})
    await _refused_roster(api, room, statement, status=422, code="invalid")


async def test_roster_listing_an_account_that_is_not_enrolled_is_422(api: Api) -> None:
    room = await api.room()
    ticket = await api.identity.create_enrollment(role=Role.PARTY, name="Carol")
    ghost = room.alice.member(Side.B).model_copy(
        update={"account_id": ticket.account_id, "name": "Carol"}
    )
    statement = room.next_roster(members=[*room.members(), ghost])
    await _refused_roster(api, room, statement, status=422, code="invalid")


async def test_roster_with_another_account_key_for_a_member_is_422(api: Api) -> None:
    room = await api.room()
    members = room.members()
    members[2] = members[2].model_copy(
        update={"account_key": b64e(SigningKey.generate().public_bytes())}
    )
    await _refused_roster(api, room, room.next_roster(members=members), status=422, code="invalid")


async def test_roster_with_another_name_for_a_member_is_422(api: Api) -> None:
    room = await api.room()
    members = room.members()
    members[2] = members[2].model_copy(update={"name": "Robert"})
    await _refused_roster(api, room, room.next_roster(members=members), status=422, code="invalid")


async def test_roster_listing_a_device_the_account_does_not_have_is_422(api: Api) -> None:
    room = await api.room()
    members = room.members()
    listener = SigningKey.generate().public_bytes()
    extra = RosterDevice(device_id=room.bob.device_id[:-1] + "x", signing_key=b64e(listener))
    members[2] = members[2].model_copy(update={"devices": [*members[2].devices, extra]})
    message = await _refused_roster(
        api, room, room.next_roster(members=members), status=422, code="invalid"
    )
    assert "devices" in message


async def test_party_on_the_mediator_side_is_422(api: Api) -> None:
    room = await api.room()
    members = room.members()
    members[1] = room.alice.member(Side.MEDIATOR)
    await _refused_roster(api, room, room.next_roster(members=members), status=422, code="invalid")


async def test_roster_listing_an_account_twice_is_422(api: Api) -> None:
    room = await api.room()
    members = [*room.members(), room.bob.member(Side.A)]
    await _refused_roster(api, room, room.next_roster(members=members), status=422, code="invalid")


async def test_roster_without_a_mediator_is_422(api: Api) -> None:
    room = await api.room()
    members = room.members()[1:]
    await _refused_roster(api, room, room.next_roster(members=members), status=422, code="invalid")


async def test_roster_with_an_unknown_side_is_422(api: Api) -> None:
    room = await api.room()
    body = _roster_body(room, room.next_roster())
    body["roster"]["body"]["members"][1]["side"] = "c"
    assert_error(await _post_roster(api, room, body), 422, "invalid")


async def test_accepted_roster_advances_the_version(api: Api) -> None:
    room = await api.room()
    response = await api.http.post(
        f"/v1/rooms/{room.room_id}/rosters",
        json=_roster_body(room, room.next_roster()),
        headers=room.mediator.headers,
    )
    assert response.status_code == 201
    assert (response.json()["roster_version"], response.json()["last_seq"]) == (3, 3)
