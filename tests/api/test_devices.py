"""Lost and new devices (docs/design.md §3): a person links a second device by a code,
revokes a lost one from the other (or the operator does, on the server host), and
rooms that list a revoked device are flagged until a mediator re-keys them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.audit import AuditFailure, verify_log
from client_sdk.client import ParleyClient, RekeyNotice
from client_sdk.client.verify import verify_account
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import (
    ProtocolError,
    RateLimitedError,
    RevokedDeviceError,
    VerificationError,
)
from client_sdk.protocol.keys import EncryptionKey, SigningKey
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.linking import CODE_ALPHABET
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import Revocation, sign_statement
from client_sdk.protocol.wire.identity import AccountOut
from server.services.devices import DeviceService
from server.services.directory import append_directory
from tests.api.factories import Keys, assert_error, dump, encryption_key_cert, now_ms
from tests.conftest import BASE_URL, PASSPHRASE, TEST_SCRYPT_N, EnrollFactory


async def link_device(app: FastAPI, owner: ParleyClient, home: Path) -> ParleyClient:
    """A new device in `home`, linked to `owner`'s account by the code it shows."""
    transport = httpx.ASGITransport(app=app)
    pending = await ParleyClient.request_link(
        server=BASE_URL, account_id=owner.whoami()["account_id"], transport=transport
    )
    await owner.devices.approve(pending.code)
    return await ParleyClient.complete_link(
        pending,
        home=home,
        passphrase=PASSPHRASE,
        transport=transport,
        scrypt_n=TEST_SCRYPT_N,
        poll_seconds=0.01,
    )


def operator(app: FastAPI) -> DeviceService:
    """What `parley admin revoke` runs, on the app's own database and log key."""
    service: DeviceService = app.state.services.devices
    return service


def typo(code: str) -> str:
    """The code with its last character changed."""
    last = code[-1]
    return code[:-1] + CODE_ALPHABET[(CODE_ALPHABET.index(last) + 1) % len(CODE_ALPHABET)]


async def test_new_device_linked_by_code_joins_the_account(
    app: FastAPI, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    bob = await enroll(name="Bob")
    phone = await link_device(app, laptop, tmp_path / "phone")
    try:
        alice_id = laptop.whoami()["account_id"]
        assert phone.whoami()["account_id"] == alice_id
        assert phone.whoami()["device_id"] != laptop.whoami()["device_id"]
        listed = {d.device_id: d for d in await phone.devices.all()}
        assert set(listed) == {laptop.whoami()["device_id"], phone.whoami()["device_id"]}
        assert listed[phone.whoami()["device_id"]].this_device
        assert set((await bob.account(alice_id)).devices) == set(listed)
        # The linked device holds the account key: it can rotate its own encryption key.
        await phone.rotate_encryption_key()
    finally:
        await phone.aclose()


async def test_wrong_code_does_not_link(
    app: FastAPI, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    alice_id = laptop.whoami()["account_id"]
    transport = httpx.ASGITransport(app=app)
    mine = await ParleyClient.request_link(
        server=BASE_URL, account_id=alice_id, transport=transport
    )
    # Someone who knows the account id slips in a request of their own.
    theirs = await ParleyClient.request_link(
        server=BASE_URL, account_id=alice_id, transport=transport
    )
    assert mine.code != theirs.code
    with pytest.raises(ProtocolError, match="nothing was approved"):
        await laptop.devices.approve(typo(mine.code))
    with pytest.raises(ProtocolError, match="a link code is 12 characters"):
        await laptop.devices.approve(mine.code[:-1])
    assert {link.code for link in await laptop.devices.pending_links()} == {
        mine.code,
        theirs.code,
    }
    approved = await laptop.devices.approve(mine.code.lower().replace("-", " "))
    assert approved.device_id == mine.device_id
    assert [link.code for link in await laptop.devices.pending_links()] == [theirs.code]
    assert set((await laptop.account(alice_id)).devices) == {
        laptop.whoami()["device_id"],
        mine.device_id,
    }


async def test_link_requests_per_account_are_limited(app: FastAPI, enroll: EnrollFactory) -> None:
    laptop = await enroll(name="Alice")
    transport = httpx.ASGITransport(app=app)
    alice_id = laptop.whoami()["account_id"]
    for _ in range(app.state.services.devices.settings.device_links_pending):
        await ParleyClient.request_link(server=BASE_URL, account_id=alice_id, transport=transport)
    with pytest.raises(RateLimitedError, match="too many link requests"):
        await ParleyClient.request_link(server=BASE_URL, account_id=alice_id, transport=transport)


async def test_revoked_device_token_is_refused(
    app: FastAPI, http: httpx.AsyncClient, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    phone = await link_device(app, laptop, tmp_path / "phone")
    try:
        token = await phone.token()
        headers = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/v1/accounts/me", headers=headers)).status_code == 200
        await laptop.devices.revoke(phone.whoami()["device_id"], reason="seized at the border")
        assert_error(await http.get("/v1/accounts/me", headers=headers), 401, "unauthenticated")
        challenge = await http.post(
            "/v1/auth/challenge", json={"device_id": phone.whoami()["device_id"]}
        )
        assert challenge.status_code == 404
        # The laptop carries on.
        assert (await laptop.account(laptop.whoami()["account_id"])).devices
    finally:
        await phone.aclose()


async def test_device_revoke_requires_account_key(
    app: FastAPI, http: httpx.AsyncClient, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    bob = await enroll(name="Bob")
    phone = await link_device(app, laptop, tmp_path / "phone")
    try:
        alice_id, laptop_id = laptop.whoami()["account_id"], laptop.whoami()["device_id"]
        revocation = Revocation(
            account_id=alice_id,
            device_id=laptop_id,
            authority="account",
            issued_at=now_ms(),
        )
        # A device key is not the account key, even the account's own device's.
        by_device = sign_statement(phone.keystore.state.device_key, revocation)
        headers = {"Authorization": f"Bearer {await phone.token()}"}
        answer = await http.post(
            "/v1/devices/revocations", json={"statement": dump(by_device)}, headers=headers
        )
        assert_error(answer, 422, "invalid", mentions="signature")
        # Another account's key, naming Alice's account: refused, as is naming its own.
        by_bob = sign_statement(bob.keystore.state.account_key, revocation)
        bob_headers = {"Authorization": f"Bearer {await bob.token()}"}
        answer = await http.post(
            "/v1/devices/revocations", json={"statement": dump(by_bob)}, headers=bob_headers
        )
        assert_error(answer, 403, "forbidden", mentions="own account")
        own = revocation.model_copy(update={"account_id": bob.whoami()["account_id"]})
        answer = await http.post(
            "/v1/devices/revocations",
            json={"statement": dump(sign_statement(bob.keystore.state.account_key, own))},
            headers=bob_headers,
        )
        assert_error(answer, 404, "not_found")
        assert laptop_id in (await bob.account(alice_id)).devices
    finally:
        await phone.aclose()


async def test_revocation_is_logged_and_verifiable(
    app: FastAPI, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    auditor = await enroll(role=Role.AUDITOR, name="Audrey")
    phone = await link_device(app, laptop, tmp_path / "phone")
    phone_id = phone.whoami()["device_id"]
    await phone.aclose()
    await laptop.devices.revoke(phone_id, reason="lost")
    seen = await auditor.account(laptop.whoami()["account_id"])
    assert phone_id not in seen.devices
    assert seen.revoked[phone_id].authority == "account"
    assert seen.revoked[phone_id].reason == "lost"
    assert seen.certified_device(phone_id) is not None  # what it signed before stays its
    views = {d.device_id: d for d in await laptop.devices.all()}
    assert (views[phone_id].status, views[phone_id].revoked_by) == ("revoked", "account")
    report = await verify_log(auditor, DIRECTORY_LOG_ID)
    assert report.entries["revocation"] == 1


async def test_server_serving_a_revoked_device_as_current_is_caught(
    app: FastAPI, http: httpx.AsyncClient, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    phone = await link_device(app, laptop, tmp_path / "phone")
    alice_id = laptop.whoami()["account_id"]
    headers = {"Authorization": f"Bearer {await laptop.token()}"}
    before = AccountOut.model_validate_json(
        (await http.get("/v1/accounts/me", headers=headers)).text
    )
    await laptop.devices.revoke(phone.whoami()["device_id"])
    await phone.aclose()
    after = AccountOut.model_validate_json(
        (await http.get("/v1/accounts/me", headers=headers)).text
    )
    lying = after.model_copy(update={"devices": before.devices}).model_dump(mode="json")
    with pytest.raises(VerificationError, match=r"serves device .* as in use"):
        verify_account(alice_id, lying, now=now_ms())


async def test_admin_revoke_device_is_signed_by_the_operators_key(
    app: FastAPI, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    bob = await enroll(name="Bob")
    phone = await link_device(app, laptop, tmp_path / "phone")
    phone_id = phone.whoami()["device_id"]
    await phone.aclose()
    done = await operator(app).operator_revoke(phone_id, reason="reported stolen")
    assert done.device_ids == [phone_id]
    seen = await bob.account(laptop.whoami()["account_id"])
    assert seen.revoked[phone_id].authority == "operator"
    assert list(seen.devices) == [laptop.whoami()["device_id"]]
    report = await verify_log(bob, DIRECTORY_LOG_ID)
    assert report.entries["revocation"] == 1


async def test_admin_revoke_account_ends_every_device_and_linking(
    app: FastAPI, http: httpx.AsyncClient, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    bob = await enroll(name="Bob")
    phone = await link_device(app, laptop, tmp_path / "phone")
    alice_id = laptop.whoami()["account_id"]
    tokens = [await laptop.token(), await phone.token()]
    done = await operator(app).operator_revoke(alice_id)
    assert sorted(done.device_ids) == sorted(
        [laptop.whoami()["device_id"], phone.whoami()["device_id"]]
    )
    for token in tokens:
        answer = await http.get("/v1/accounts/me", headers={"Authorization": f"Bearer {token}"})
        assert_error(answer, 401, "unauthenticated")
    seen = await bob.account(alice_id)
    assert seen.whole_account_revoked
    assert not seen.devices
    answer = await http.post(
        "/v1/device-links",
        json={"account_id": alice_id, "signing_key": b64e(bytes(32)), "encryption_key": ""},
    )
    assert answer.status_code == 422
    await phone.aclose()


async def _room_with_two_alice_devices(
    app: FastAPI, enroll: EnrollFactory, tmp_path: Path
) -> tuple[ParleyClient, ParleyClient, ParleyClient, str]:
    mediator = await enroll(role=Role.MEDIATOR, name="Mona")
    laptop = await enroll(name="Alice")
    phone = await link_device(app, laptop, tmp_path / "phone")
    room = await mediator.create_room("Talks")
    await mediator.add_member(room.room_id, laptop.whoami()["account_id"], Side.A)
    return mediator, laptop, phone, room.room_id


async def test_room_with_revoked_device_is_flagged_for_rekey(
    app: FastAPI, enroll: EnrollFactory, tmp_path: Path
) -> None:
    mediator, laptop, phone, room_id = await _room_with_two_alice_devices(app, enroll, tmp_path)
    phone_id = phone.whoami()["device_id"]
    await phone.aclose()
    assert (await mediator.room(room_id)).rekey == []
    await laptop.devices.revoke(phone_id)
    alice_id = laptop.whoami()["account_id"]
    assert (await mediator.room(room_id)).rekey == [RekeyNotice(alice_id, phone_id, "revoked")]
    room = await mediator.rekey(room_id)
    assert room.rekey == []
    member = next(m for m in room.members if m.account_id == alice_id)
    assert member.device_ids == [laptop.whoami()["device_id"]]


async def test_client_refuses_to_seal_to_revoked_device(
    app: FastAPI, enroll: EnrollFactory, tmp_path: Path
) -> None:
    mediator, laptop, phone, room_id = await _room_with_two_alice_devices(app, enroll, tmp_path)
    phone_id = phone.whoami()["device_id"]
    await phone.aclose()
    await operator(app).operator_revoke(phone_id)
    with pytest.raises(RevokedDeviceError, match="re-keys the room") as caught:
        await mediator.send(room_id, "for Alice's eyes")
    assert (caught.value.device_id, caught.value.authority) == (phone_id, "operator")
    await mediator.rekey(room_id)
    await mediator.send(room_id, "for Alice's eyes")
    texts = [m.text async for m in laptop.messages(room_id)]
    assert texts == ["for Alice's eyes"]


async def test_linked_device_reads_after_rekey(
    app: FastAPI, enroll: EnrollFactory, tmp_path: Path
) -> None:
    mediator = await enroll(role=Role.MEDIATOR, name="Mona")
    laptop = await enroll(name="Alice")
    room = await mediator.create_room("Talks")
    alice_id = laptop.whoami()["account_id"]
    await mediator.add_member(room.room_id, alice_id, Side.A)
    phone = await link_device(app, laptop, tmp_path / "phone")
    try:
        phone_id = phone.whoami()["device_id"]
        assert (await mediator.room(room.room_id)).rekey == [
            RekeyNotice(alice_id, phone_id, "linked")
        ]
        await mediator.rekey(room.room_id)
        await mediator.send(room.room_id, "welcome, second machine")
        texts = [m.text async for m in phone.messages(room.room_id)]
        assert texts == ["welcome, second machine"]
    finally:
        await phone.aclose()


async def test_forged_operator_revocation_is_refused(
    app: FastAPI, http: httpx.AsyncClient, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    phone = await link_device(app, laptop, tmp_path / "phone")
    phone_id = phone.whoami()["device_id"]
    await phone.aclose()
    await operator(app).operator_revoke(phone_id)
    headers = {"Authorization": f"Bearer {await laptop.token()}"}
    served = (await http.get("/v1/accounts/me", headers=headers)).json()
    operator_key = app.state.services.devices.signer.public_key
    verify_account(laptop.whoami()["account_id"], served, now=now_ms(), operator_key=operator_key)
    entry = next(e for e in served["directory"]["entries"] if e["kind"] == "revocation")
    forged = sign_statement(
        SigningKey.generate(), Revocation.model_validate(entry["statement"]["body"])
    )
    entry["statement"] = dump(forged)
    with pytest.raises(VerificationError, match="signature"):
        verify_account(
            laptop.whoami()["account_id"], served, now=now_ms(), operator_key=operator_key
        )


async def test_key_certified_for_a_revoked_device_fails_the_directory_audit(
    app: FastAPI, enroll: EnrollFactory, tmp_path: Path
) -> None:
    laptop = await enroll(name="Alice")
    auditor = await enroll(role=Role.AUDITOR, name="Audrey")
    phone = await link_device(app, laptop, tmp_path / "phone")
    phone_id = phone.whoami()["device_id"]
    await phone.aclose()
    await laptop.devices.revoke(phone_id)
    # A server (or a thief with the account key) logs a new key for the revoked device.
    state = laptop.keystore.state
    cert = encryption_key_cert(
        Keys(state.account_key, SigningKey.generate(), EncryptionKey.generate()),
        account_id=state.account_id,
        device_id=phone_id,
    )
    identity = app.state.services.identity
    async with identity.database.write() as conn:
        await append_directory(
            conn, identity.log, "encryption-key", cert, state.account_key.public_bytes(), now_ms()
        )
    with pytest.raises(AuditFailure, match=f"device {phone_id}, not certified"):
        await verify_log(auditor, DIRECTORY_LOG_ID)
