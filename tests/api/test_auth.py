"""Enrollment, login and bearer tokens refuse what they must (docs/design.md §3, §9):
single-use, expiring tokens and challenges, certificates checked against the
account key, and every refusal leaving the database untouched."""

from __future__ import annotations

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.keys import SigLabel, SigningKey
from client_sdk.protocol.models import Role
from client_sdk.protocol.statements import SignedStatement, login_payload
from server.services.identity import EnrollmentTicket
from tests.api.conftest import Api, MakeApi
from tests.api.factories import (
    BAD_BASE64,
    DAY_MS,
    Json,
    Keys,
    ManualClock,
    assert_bad_input,
    assert_error,
    bad_base64,
    device_cert,
    encryption_key_cert,
    enrollment_body,
    flip_bit,
    login,
    nothing_written,
    now_ms,
    registration,
    replaced,
)

# --- enrollment ---------------------------------------------------------------------


async def _ticket(api: Api, *, name: str = "Carol", role: Role = Role.PARTY) -> EnrollmentTicket:
    return await api.identity.create_enrollment(role=role, name=name)


def _body(
    ticket: EnrollmentTicket,
    keys: Keys,
    *,
    registration_: SignedStatement | None = None,
    device_cert_: SignedStatement | None = None,
    encryption_key_cert_: SignedStatement | None = None,
) -> Json:
    """Carol's enrollment with `keys`; any statement replaceable."""
    return enrollment_body(
        ticket.token,
        keys,
        account_id=ticket.account_id,
        name="Carol",
        role=Role.PARTY,
        registration_=registration_,
        device_cert_=device_cert_,
        encryption_key_cert_=encryption_key_cert_,
    )


async def _refused_enrollment(api: Api, body: Json) -> str:
    """Post an enrollment that must be refused as invalid; return the message."""
    async with nothing_written(api.app):
        response = await api.http.post("/v1/enroll", json=body)
    return assert_error(response, 422, "invalid")


async def test_enrollment_token_works_once(api: Api) -> None:
    ticket = await _ticket(api)
    first = await api.http.post("/v1/enroll", json=_body(ticket, Keys()))
    assert first.status_code == 201

    async with nothing_written(api.app):
        second = await api.http.post("/v1/enroll", json=_body(ticket, Keys()))

    assert_error(second, 401, "unauthenticated")


async def test_enrollment_token_cannot_be_previewed_once_used(api: Api) -> None:
    ticket = await _ticket(api)
    await api.http.post("/v1/enroll", json=_body(ticket, Keys()))

    response = await api.http.post("/v1/enroll/preview", json={"token": ticket.token})

    assert_error(response, 401, "unauthenticated")


async def test_unknown_enrollment_token_is_401(api: Api) -> None:
    ticket = await _ticket(api)
    body = {**_body(ticket, Keys()), "token": b64e(b"not a token we issued")}
    async with nothing_written(api.app):
        response = await api.http.post("/v1/enroll", json=body)
    assert_error(response, 401, "unauthenticated")


async def test_expired_enrollment_token_is_401(make_api: MakeApi) -> None:
    clock = ManualClock()
    api = await make_api(clock=clock, enrollment_ttl_seconds=3600)
    ticket = await _ticket(api)
    clock.advance(seconds=3600)
    keys = Keys()
    body = _body(
        ticket,
        keys,
        encryption_key_cert_=encryption_key_cert(
            keys, account_id=ticket.account_id, not_after=clock.now + DAY_MS
        ),
    )
    async with nothing_written(api.app):
        response = await api.http.post("/v1/enroll", json=body)
    assert_error(response, 401, "unauthenticated")


async def test_enrollment_token_is_accepted_until_it_expires(make_api: MakeApi) -> None:
    clock = ManualClock()
    api = await make_api(clock=clock, enrollment_ttl_seconds=3600)
    ticket = await _ticket(api)
    clock.advance(seconds=3599)

    response = await api.http.post("/v1/enroll", json=_body(ticket, Keys()))

    assert response.status_code == 201


async def test_refused_enrollment_leaves_the_token_usable(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    forged = registration(
        keys,
        account_id=ticket.account_id,
        name="Carol",
        role=Role.PARTY,
        signer=SigningKey.generate(),
    )
    await _refused_enrollment(api, _body(ticket, keys, registration_=forged))

    response = await api.http.post("/v1/enroll", json=_body(ticket, keys))

    assert response.status_code == 201


async def test_registration_with_another_name_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    reg = registration(keys, account_id=ticket.account_id, name="Mallory", role=Role.PARTY)
    message = await _refused_enrollment(api, _body(ticket, keys, registration_=reg))
    assert "name" in message


async def test_registration_with_another_role_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    reg = registration(keys, account_id=ticket.account_id, name="Carol", role=Role.MEDIATOR)
    await _refused_enrollment(api, _body(ticket, keys, registration_=reg))


async def test_registration_for_another_account_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    other = await _ticket(api)
    keys = Keys()
    reg = registration(keys, account_id=other.account_id, name="Carol", role=Role.PARTY)
    await _refused_enrollment(api, _body(ticket, keys, registration_=reg))


async def test_registration_signed_by_another_key_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    reg = registration(
        keys,
        account_id=ticket.account_id,
        name="Carol",
        role=Role.PARTY,
        signer=SigningKey.generate(),
    )
    message = await _refused_enrollment(api, _body(ticket, keys, registration_=reg))
    assert "signature" in message


async def test_registration_with_a_flipped_signature_bit_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    body = _body(ticket, Keys())
    body["registration"]["signature"] = flip_bit(body["registration"]["signature"])
    await _refused_enrollment(api, body)


async def test_registration_with_an_unknown_field_in_its_body_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    body = _body(ticket, Keys())
    body["registration"]["body"]["admin"] = True
    await _refused_enrollment(api, body)


async def test_account_key_that_is_not_unpadded_base64url_is_refused(api: Api) -> None:
    ticket = await _ticket(api)
    body = _body(ticket, Keys())
    for how in BAD_BASE64:
        bad = replaced(
            body,
            ("registration", "body", "account_key"),
            bad_base64(body["registration"]["body"]["account_key"], how),
        )
        async with nothing_written(api.app):
            response = await api.http.post("/v1/enroll", json=bad)
        assert_bad_input(response, mentions="account key")


async def test_device_cert_signed_by_another_key_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    cert = device_cert(keys, account_id=ticket.account_id, signer=keys.device_key)
    message = await _refused_enrollment(api, _body(ticket, keys, device_cert_=cert))
    assert "signature" in message


async def test_device_cert_with_a_flipped_signature_bit_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    body = _body(ticket, Keys())
    body["device_cert"]["signature"] = flip_bit(body["device_cert"]["signature"])
    await _refused_enrollment(api, body)


async def test_device_id_that_is_not_the_key_id_of_its_signing_key_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    cert = device_cert(keys, account_id=ticket.account_id, device_id=Keys().device_id)
    message = await _refused_enrollment(api, _body(ticket, keys, device_cert_=cert))
    assert "key id" in message


async def test_device_cert_for_another_account_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    other = await _ticket(api)
    keys = Keys()
    cert = device_cert(keys, account_id=other.account_id)
    await _refused_enrollment(api, _body(ticket, keys, device_cert_=cert))


async def test_encryption_key_cert_signed_by_another_key_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    cert = encryption_key_cert(keys, account_id=ticket.account_id, signer=keys.device_key)
    message = await _refused_enrollment(api, _body(ticket, keys, encryption_key_cert_=cert))
    assert "signature" in message


async def test_encryption_key_cert_with_a_flipped_signature_bit_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    body = _body(ticket, Keys())
    cert = body["encryption_key_cert"]
    cert["signature"] = flip_bit(cert["signature"])
    await _refused_enrollment(api, body)


async def test_encryption_key_cert_for_another_device_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    cert = encryption_key_cert(keys, account_id=ticket.account_id, device_id=Keys().device_id)
    await _refused_enrollment(api, _body(ticket, keys, encryption_key_cert_=cert))


async def test_encryption_key_cert_that_already_expired_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    cert = encryption_key_cert(keys, account_id=ticket.account_id, not_after=1)
    await _refused_enrollment(api, _body(ticket, keys, encryption_key_cert_=cert))


async def test_encryption_key_cert_valid_beyond_90_days_is_422(api: Api) -> None:
    ticket = await _ticket(api)
    keys = Keys()
    cert = encryption_key_cert(keys, account_id=ticket.account_id, not_after=now_ms() + 91 * DAY_MS)
    await _refused_enrollment(api, _body(ticket, keys, encryption_key_cert_=cert))


async def test_account_key_of_another_account_is_409(api: Api) -> None:
    alice = await api.actor()
    ticket = await _ticket(api)
    body = _body(ticket, Keys(account_key=alice.keys.account_key))
    async with nothing_written(api.app):
        response = await api.http.post("/v1/enroll", json=body)
    assert_error(response, 409, "conflict")


async def test_device_key_of_another_device_is_409(api: Api) -> None:
    alice = await api.actor()
    ticket = await _ticket(api)
    body = _body(ticket, Keys(device_key=alice.keys.device_key))
    async with nothing_written(api.app):
        response = await api.http.post("/v1/enroll", json=body)
    assert_error(response, 409, "conflict")


async def test_party_cannot_issue_enrollment_tokens(api: Api) -> None:
    alice = await api.actor()
    async with nothing_written(api.app):
        response = await api.http.post(
            "/v1/enrollment-tokens", json={"name": "Carol"}, headers=alice.headers
        )
    assert_error(response, 403, "forbidden")


async def test_enrollment_token_name_with_a_nul_character_is_422(api: Api) -> None:
    mediator = await api.actor(Role.MEDIATOR, "Mona")
    async with nothing_written(api.app):
        response = await api.http.post(
            "/v1/enrollment-tokens", json={"name": "Car\x00ol"}, headers=mediator.headers
        )
    assert_error(response, 422, "invalid", mentions="name")


# --- login --------------------------------------------------------------------------


async def _challenge(api: Api, device_id: str) -> str:
    response = await api.http.post("/v1/auth/challenge", json={"device_id": device_id})
    assert response.status_code == 200
    nonce: str = response.json()["nonce"]
    return nonce


def _answer(key: SigningKey, device_id: str, nonce: str) -> Json:
    signature = key.sign(SigLabel.LOGIN, login_payload(device_id, nonce))
    return {"device_id": device_id, "nonce": nonce, "signature": b64e(signature)}


async def _refused_login(api: Api, body: Json) -> None:
    async with nothing_written(api.app):
        response = await api.http.post("/v1/auth/token", json=body)
    assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_challenge_for_an_unknown_device_is_404(api: Api) -> None:
    async with nothing_written(api.app):
        response = await api.http.post("/v1/auth/challenge", json={"device_id": Keys().device_id})
    assert_error(response, 404, "not_found")


async def test_challenge_answered_twice_logs_in_once(api: Api) -> None:
    alice = await api.actor()
    answer = _answer(alice.keys.device_key, alice.device_id, await _challenge(api, alice.device_id))
    first = await api.http.post("/v1/auth/token", json=answer)
    assert first.status_code == 200

    await _refused_login(api, answer)


async def test_login_signed_by_another_key_is_401(api: Api) -> None:
    alice = await api.actor()
    nonce = await _challenge(api, alice.device_id)
    await _refused_login(api, _answer(SigningKey.generate(), alice.device_id, nonce))


async def test_login_with_a_flipped_signature_bit_is_401(api: Api) -> None:
    alice = await api.actor()
    answer = _answer(alice.keys.device_key, alice.device_id, await _challenge(api, alice.device_id))
    await _refused_login(api, {**answer, "signature": flip_bit(answer["signature"])})


async def test_login_signature_with_another_label_is_401(api: Api) -> None:
    alice = await api.actor()
    nonce = await _challenge(api, alice.device_id)
    signature = alice.keys.device_key.sign(SigLabel.ENVELOPE, login_payload(alice.device_id, nonce))
    body = {"device_id": alice.device_id, "nonce": nonce, "signature": b64e(signature)}
    await _refused_login(api, body)


async def test_challenge_issued_to_another_device_does_not_log_in(api: Api) -> None:
    alice = await api.actor()
    bob = await api.actor(name="Bob")
    nonce = await _challenge(api, alice.device_id)
    await _refused_login(api, _answer(bob.keys.device_key, bob.device_id, nonce))


async def test_login_with_a_nonce_never_issued_is_401(api: Api) -> None:
    alice = await api.actor()
    await _refused_login(api, _answer(alice.keys.device_key, alice.device_id, b64e(bytes(32))))


async def test_login_for_an_unknown_device_is_401(api: Api) -> None:
    keys = Keys()
    await _refused_login(api, _answer(keys.device_key, keys.device_id, b64e(bytes(32))))


async def test_expired_challenge_is_401(make_api: MakeApi) -> None:
    clock = ManualClock()
    api = await make_api(clock=clock, challenge_ttl_seconds=60)
    alice = await api.actor()
    nonce = await _challenge(api, alice.device_id)
    clock.advance(seconds=60)
    await _refused_login(api, _answer(alice.keys.device_key, alice.device_id, nonce))


async def test_challenge_is_accepted_until_it_expires(make_api: MakeApi) -> None:
    clock = ManualClock()
    api = await make_api(clock=clock, challenge_ttl_seconds=60)
    alice = await api.actor()
    nonce = await _challenge(api, alice.device_id)
    clock.advance(seconds=59.999)

    response = await api.http.post(
        "/v1/auth/token", json=_answer(alice.keys.device_key, alice.device_id, nonce)
    )

    assert response.status_code == 200


async def test_login_signature_that_is_not_unpadded_base64url_is_refused(api: Api) -> None:
    alice = await api.actor()
    answer = _answer(alice.keys.device_key, alice.device_id, await _challenge(api, alice.device_id))
    for how in BAD_BASE64:
        async with nothing_written(api.app):
            response = await api.http.post(
                "/v1/auth/token", json={**answer, "signature": bad_base64(answer["signature"], how)}
            )
        assert_bad_input(response, mentions="signature")


# --- bearer tokens ------------------------------------------------------------------


async def test_missing_authorization_header_is_401(api: Api) -> None:
    response = await api.http.get("/v1/accounts/me")
    assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_garbage_authorization_header_is_401(api: Api) -> None:
    alice = await api.actor()
    for header in (
        "Bearer",
        "Bearer ",
        f"Basic {alice.token}",
        f"{alice.token}",
        "Bearer not-a-token-we-issued",
        f"Bearer {alice.token}x",
    ):
        response = await api.http.get("/v1/accounts/me", headers={"Authorization": header})
        assert_error(response, 401, "unauthenticated")


async def test_expired_bearer_token_is_401(make_api: MakeApi) -> None:
    clock = ManualClock()
    api = await make_api(clock=clock, token_ttl_seconds=600)
    alice = await api.actor()
    clock.advance(seconds=600)

    response = await api.http.get("/v1/accounts/me", headers=alice.headers)

    assert_error(response, 401, "unauthenticated")


async def test_bearer_token_is_accepted_until_it_expires(make_api: MakeApi) -> None:
    clock = ManualClock()
    api = await make_api(clock=clock, token_ttl_seconds=600)
    alice = await api.actor()
    clock.advance(seconds=599.999)

    response = await api.http.get("/v1/accounts/me", headers=alice.headers)

    assert response.status_code == 200


async def test_logout_revokes_the_token(api: Api) -> None:
    alice = await api.actor()
    logout = await api.http.post("/v1/auth/logout", headers=alice.headers)
    assert logout.status_code == 204

    response = await api.http.get("/v1/accounts/me", headers=alice.headers)

    assert_error(response, 401, "unauthenticated")


async def test_logout_leaves_the_devices_other_tokens_working(api: Api) -> None:
    alice = await api.actor()
    second = await login(api.http, alice.device_id, alice.keys.device_key)
    await api.http.post("/v1/auth/logout", headers=alice.headers)

    response = await api.http.get("/v1/accounts/me", headers={"Authorization": f"Bearer {second}"})

    assert response.status_code == 200
