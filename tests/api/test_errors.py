"""The error contract (docs/design.md §9) across endpoints: every refusal is the JSON body
``{"error": {"code", "message"}}`` with the right status, never a 500, and
leaves nothing behind.

Each endpoint has a baseline request that succeeds; the tests mutate it one way
at a time (malformed JSON, an unknown field, a missing field, a wrong type) and
check the refusal and that no table changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.keys import SigLabel
from client_sdk.protocol.models import Role
from client_sdk.protocol.statements import login_payload, sign_statement
from tests.api.conftest import Api, MakeApi
from tests.api.factories import (
    Json,
    Keys,
    assert_error,
    create_room_body,
    dump,
    encryption_key_cert,
    enrollment_body,
    envelope,
    get,
    nothing_written,
    replaced,
    without,
)


@dataclass(frozen=True, slots=True)
class Call:
    """One request that the server accepts, and the status it answers with."""

    method: str
    path: str
    body: Json
    headers: dict[str, str]
    created: int


async def _calls(api: Api) -> dict[str, Call]:
    """A baseline request per endpoint with a body, all in one world (a room with
    mediator Mona, Alice and Bob); each is accepted when sent unmodified, in order."""
    room = await api.room()
    mona, alice = room.mediator, room.alice
    enrolling = await api.identity.create_enrollment(role=Role.PARTY, name="Carol")
    previewed = await api.identity.create_enrollment(role=Role.PARTY, name="Dan")
    nonce = (await api.http.post("/v1/auth/challenge", json={"device_id": alice.device_id})).json()[
        "nonce"
    ]
    login = alice.keys.device_key.sign(SigLabel.LOGIN, login_payload(alice.device_id, nonce))
    new_room, _ = create_room_body(mona)
    next_roster = sign_statement(mona.keys.device_key, room.next_roster())
    rotated = Keys(account_key=alice.keys.account_key, device_key=alice.keys.device_key)
    rooms = f"/v1/rooms/{room.room_id}"
    return {
        "enroll": Call(
            "POST",
            "/v1/enroll",
            enrollment_body(
                enrolling.token,
                Keys(),
                account_id=enrolling.account_id,
                name="Carol",
                role=Role.PARTY,
            ),
            {},
            201,
        ),
        "enroll_preview": Call("POST", "/v1/enroll/preview", {"token": previewed.token}, {}, 200),
        "auth_challenge": Call(
            "POST", "/v1/auth/challenge", {"device_id": alice.device_id}, {}, 200
        ),
        "auth_token": Call(
            "POST",
            "/v1/auth/token",
            {"device_id": alice.device_id, "nonce": nonce, "signature": b64e(login)},
            {},
            200,
        ),
        "room_create": Call(
            "POST", "/v1/rooms", {**new_room, "require_verified": False}, mona.headers, 201
        ),
        "message_send": Call(
            "POST",
            f"{rooms}/messages",
            envelope(room, alice).model_dump(mode="json"),
            alice.headers,
            201,
        ),
        "roster_update": Call(
            "POST", f"{rooms}/rosters", {"roster": dump(next_roster)}, mona.headers, 201
        ),
        "enrollment_token": Call(
            "POST", "/v1/enrollment-tokens", {"name": "Erin"}, mona.headers, 201
        ),
        "encryption_key_rotate": Call(
            "POST",
            "/v1/devices/me/encryption-keys",
            {"cert": dump(encryption_key_cert(rotated, account_id=alice.account_id))},
            alice.headers,
            201,
        ),
    }


WRONG_TYPES: dict[str, tuple[tuple[str, ...], object]] = {
    "enroll": (("token",), 12345),
    "enroll_preview": (("token",), ["a", "list"]),
    "auth_challenge": (("device_id",), 7),
    "auth_token": (("signature",), 7),
    "room_create": (("require_verified",), "yes"),
    "message_send": (("header", "roster_version"), "2"),
    "roster_update": (("roster", "signature"), 5),
    "enrollment_token": (("name",), 5),
    "encryption_key_rotate": (("cert", "body"), "a string"),
}
"""Per endpoint: a field and a value of the wrong JSON type for it."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A mutated request body and the refusal expected for it."""

    content: str
    status: int
    code: str
    mentions: str | None = None


async def _check_every_endpoint(api: Api, mutate: Callable[[str, Call], Refusal]) -> None:
    """Send each endpoint's baseline, mutated, and collect every wrong answer."""
    wrong: list[str] = []
    for endpoint, call in (await _calls(api)).items():
        refusal = mutate(endpoint, call)
        async with nothing_written(api.app):
            response = await api.http.request(
                call.method,
                call.path,
                content=refusal.content,
                headers={**call.headers, "content-type": "application/json"},
            )
        try:
            assert_error(response, refusal.status, refusal.code, mentions=refusal.mentions)
        except AssertionError as exc:
            wrong.append(f"{endpoint}: {exc}")
    assert not wrong, "\n".join(wrong)


async def test_unmutated_baseline_requests_are_accepted(api: Api) -> None:
    calls = await _calls(api)
    answers = {
        endpoint: (
            await api.http.request(call.method, call.path, json=call.body, headers=call.headers)
        ).status_code
        for endpoint, call in calls.items()
    }
    assert answers == {endpoint: call.created for endpoint, call in calls.items()}


async def test_malformed_json_is_400_on_every_endpoint(api: Api) -> None:
    def truncate(_endpoint: str, call: Call) -> Refusal:
        return Refusal(json.dumps(call.body)[:-1], 400, "malformed")

    await _check_every_endpoint(api, truncate)


async def test_unknown_field_is_422_on_every_endpoint(api: Api) -> None:
    def add_field(_endpoint: str, call: Call) -> Refusal:
        return Refusal(json.dumps({**call.body, "surprise": 1}), 422, "invalid", "surprise")

    await _check_every_endpoint(api, add_field)


async def test_missing_field_is_422_on_every_endpoint(api: Api) -> None:
    def drop_field(_endpoint: str, call: Call) -> Refusal:
        field = next(iter(call.body))
        return Refusal(json.dumps(without(call.body, (field,))), 422, "invalid", field)

    await _check_every_endpoint(api, drop_field)


async def test_wrong_json_type_is_422_on_every_endpoint(api: Api) -> None:
    def retype(endpoint: str, call: Call) -> Refusal:
        path, value = WRONG_TYPES[endpoint]
        assert type(get(call.body, path)) is not type(value)
        return Refusal(json.dumps(replaced(call.body, path, value)), 422, "invalid", path[-1])

    await _check_every_endpoint(api, retype)


async def test_json_that_is_not_an_object_is_422(api: Api) -> None:
    for content in (b"[]", b'"a string"', b"null", b"42"):
        response = await api.http.post(
            "/v1/auth/challenge", content=content, headers={"content-type": "application/json"}
        )
        assert_error(response, 422, "invalid")


async def test_empty_body_is_422(api: Api) -> None:
    response = await api.http.post(
        "/v1/enroll/preview", content=b"", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "invalid")


async def test_body_that_is_not_utf8_is_400(api: Api) -> None:
    response = await api.http.post(
        "/v1/enroll/preview",
        content=b'{"token": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "malformed")


async def test_deeply_nested_json_is_400(api: Api) -> None:
    response = await api.http.post(
        "/v1/auth/challenge",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "malformed")


async def test_unknown_route_is_404(api: Api) -> None:
    response = await api.http.get("/v1/no-such-thing")
    assert_error(response, 404, "not_found")


async def test_wrong_method_is_405_and_names_the_allowed_ones(api: Api) -> None:
    response = await api.http.delete("/v1/auth/challenge")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_requests_over_the_rate_limit_are_429(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_burst=3, rate_limit_per_second=0.001)
    alice = await api.actor()
    statuses = [
        (await api.http.get("/v1/accounts/me", headers=alice.headers)).status_code for _ in range(3)
    ]
    response = await api.http.get("/v1/accounts/me", headers=alice.headers)
    assert statuses == [200, 200, 200]
    assert_error(response, 429, "rate_limited")


async def test_rate_limit_is_counted_per_device(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_burst=1, rate_limit_per_second=0.001)
    alice = await api.actor()
    bob = await api.actor(name="Bob")
    await api.http.get("/v1/accounts/me", headers=alice.headers)
    assert (await api.http.get("/v1/accounts/me", headers=alice.headers)).status_code == 429

    response = await api.http.get("/v1/accounts/me", headers=bob.headers)

    assert response.status_code == 200


async def test_rate_limited_send_writes_nothing(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_burst=3, rate_limit_per_second=0.001)
    room = await api.room()
    body = envelope(room, room.alice).model_dump(mode="json")
    path = f"/v1/rooms/{room.room_id}/messages"
    for _ in range(3):
        await api.http.get("/v1/accounts/me", headers=room.alice.headers)
    async with nothing_written(api.app):
        response = await api.http.post(path, json=body, headers=room.alice.headers)
    assert_error(response, 429, "rate_limited")


async def test_a_value_that_is_not_base64url_is_named_so_not_by_its_pattern(api: Api) -> None:
    response = await api.http.post(
        "/v1/auth/token", json={"device_id": "d1", "nonce": "n", "signature": "AAAA"}
    )

    assert_error(response, 422, "invalid", mentions="nonce: not canonical unpadded base64url")
