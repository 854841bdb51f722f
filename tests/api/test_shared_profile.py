"""Two SDK clients on one profile, as two `parley` processes would be (issue 7):
neither undoes what the other wrote, and each sees the other's keys and anchors.
(`tests/e2e/test_shared_profile.py` plays the same with real processes.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.audit import fetch_checkpoint
from client_sdk.client import ParleyClient
from client_sdk.protocol.errors import TransportError
from client_sdk.protocol.models import Role, Side
from tests.conftest import EnrollFactory, reopen


class _Interleaved(httpx.AsyncBaseTransport):
    """The app in-process; `before_proof` runs once, just before the first consistency
    proof is asked for (while the client is between reading and writing its checkpoint)."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.before_proof: Callable[[], Awaitable[object]] | None = None
        self.proofs: list[tuple[int, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/proof/consistency"):
            params = request.url.params
            self.proofs.append((int(params["size1"]), int(params["size2"])))
            hook, self.before_proof = self.before_proof, None
            if hook is not None:
                await hook()
        return await self.inner.handle_async_request(request)


def _second_client(client: ParleyClient, transport: httpx.AsyncBaseTransport) -> ParleyClient:
    """Another client on `client`'s profile, opened as another process would."""
    return ParleyClient(reopen(client), transport=transport)


async def _room(enroll: EnrollFactory) -> tuple[ParleyClient, ParleyClient, ParleyClient, str]:
    mediator = await enroll(role=Role.MEDIATOR, name="Mona")
    alice = await enroll(name="Alice")
    bob = await enroll(name="Bob")
    room = await mediator.create_room("Talks")
    await mediator.add_member(room.room_id, alice.whoami()["account_id"], Side.A)
    await mediator.add_member(room.room_id, bob.whoami()["account_id"], Side.B)
    return mediator, alice, bob, room.room_id


async def test_a_reader_keeps_a_verification_made_by_another_client(
    app: FastAPI, enroll: EnrollFactory
) -> None:
    mediator, alice, bob, room = await _room(enroll)
    await mediator.send(room, "first")
    assert [m.text async for m in alice.messages(room)] == ["first"]
    bob_id = bob.whoami()["account_id"]
    async with _second_client(alice, httpx.ASGITransport(app=app)) as other:
        await other.verify_contact(bob_id, await other.safety_number(bob_id))

    await mediator.send(room, "second")
    assert [m.text async for m in alice.messages(room, after=0)] == ["first", "second"]

    assert reopen(alice).is_verified(bob_id)
    assert alice.is_verified(bob_id)


async def test_a_reader_opens_messages_sealed_to_a_key_another_client_rotated_to(
    app: FastAPI, enroll: EnrollFactory
) -> None:
    mediator, alice, _, room = await _room(enroll)
    old_key = alice.keystore.current_encryption_key().key_id
    await mediator.send(room, "to the old key")
    assert [m.text async for m in alice.messages(room)] == ["to the old key"]
    async with _second_client(alice, httpx.ASGITransport(app=app)) as other:
        new_key = await other.rotate_encryption_key()

    await mediator.send(room, "to the new key")
    await mediator.send(room, "and again")

    assert [m.text async for m in alice.messages(room)] == [
        "to the old key",
        "to the new key",
        "and again",
    ]
    stored = reopen(alice)
    assert stored.current_encryption_key().key_id == new_key
    assert stored.encryption_key_by_id(old_key) is not None


async def test_a_checkpoint_stored_meanwhile_by_another_client_must_extend_ours(
    app: FastAPI, enroll: EnrollFactory
) -> None:
    mediator, alice, _, room = await _room(enroll)
    await mediator.send(room, "one")
    assert [m.text async for m in alice.messages(room)] == ["one"]
    start = alice.logs.since(room)
    await mediator.send(room, "two")
    middle = await fetch_checkpoint(mediator, room)
    await mediator.send(room, "three")
    newest = await fetch_checkpoint(mediator, room)
    middle_size, newest_size = (int(note.split("\n")[1]) for note in (middle, newest))
    transport = _Interleaved(app)
    other = _second_client(alice, transport)
    # While `other` checks `middle` against the checkpoint it read, Alice's own
    # client accepts `newest`: `other` must not go back, and must check its
    # `middle` against the newer checkpoint it finds stored.
    transport.before_proof = lambda: alice.logs.accept(room, newest)

    await other.logs.accept(room, middle)
    await other.aclose()

    assert transport.proofs == [(start, middle_size), (middle_size, newest_size)]
    checkpoint = reopen(alice).checkpoint(room)
    assert checkpoint is not None
    assert checkpoint.size == newest_size


class _LostReply(httpx.AsyncBaseTransport):
    """The app in-process, except that the reply to a published key never arrives
    (as if the process died right after the server accepted it)."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path == "/v1/devices/me/encryption-keys":
            await response.aclose()
            raise httpx.ReadError("connection lost", request=request)
        return response


async def test_a_key_published_by_a_rotation_that_never_finished_still_opens_messages(
    app: FastAPI, enroll: EnrollFactory
) -> None:
    mediator, alice, _, room = await _room(enroll)
    old_key = alice.keystore.current_encryption_key().key_id
    async with _second_client(alice, _LostReply(app)) as dying:
        with pytest.raises(TransportError):
            await dying.rotate_encryption_key()

    await mediator.send(room, "sealed to the key the directory now shows")

    assert [m.text async for m in alice.messages(room)] == [
        "sealed to the key the directory now shows"
    ]
    stored = reopen(alice).state.encryption_keys
    assert [(r.key_id == old_key, r.published) for r in stored] == [(True, True), (False, False)]
