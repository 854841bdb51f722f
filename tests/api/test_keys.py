"""Encryption-key rotation and the deletion of old private keys (docs/design.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI

from client_sdk.client import (
    DAY_MS,
    RETIRED_KEY_GRACE_MS,
    ROTATE_AFTER_MS,
    ParleyClient,
)
from client_sdk.protocol.models import Role, Side
from server.services.common import system_clock
from server.services.identity import IdentityService
from tests.conftest import BASE_URL, PASSPHRASE, TEST_SCRYPT_N


@dataclass
class FakeClock:
    """A client-side clock the test moves forward."""

    now: int

    def __call__(self) -> int:
        return self.now


async def _enroll(
    app: FastAPI, identity: IdentityService, home: Path, role: Role, name: str, clock: FakeClock
) -> ParleyClient:
    ticket = await identity.create_enrollment(role=role, name=name)
    return await ParleyClient.enroll(
        server=BASE_URL,
        token=ticket.token,
        home=home,
        passphrase=PASSPHRASE,
        transport=httpx.ASGITransport(app=app),
        clock=clock,
        scrypt_n=TEST_SCRYPT_N,
    )


async def test_keys_rotate_weekly_and_old_private_keys_are_deleted_after_the_grace_period(
    app: FastAPI, identity: IdentityService, tmp_path: Path
) -> None:
    clock = FakeClock(system_clock())
    mediator = await _enroll(app, identity, tmp_path / "m", Role.MEDIATOR, "Mona", clock)
    alice = await _enroll(app, identity, tmp_path / "a", Role.PARTY, "Alice", clock)
    room = await mediator.create_room("Talks")
    await mediator.add_member(room.room_id, alice.whoami()["account_id"], Side.A)
    first_key = alice.keystore.current_encryption_key().key_id
    await mediator.send(room.room_id, "sealed to Alice's first key")

    clock.now += ROTATE_AFTER_MS + DAY_MS
    await alice.maintain_keys()
    second_key = alice.keystore.current_encryption_key().key_id
    await mediator.send(room.room_id, "sealed to Alice's second key")
    during_grace = [m.text async for m in alice.messages(room.room_id)]

    clock.now += RETIRED_KEY_GRACE_MS + DAY_MS
    after_grace = [m.text async for m in alice.messages(room.room_id)]

    assert second_key != first_key
    assert during_grace == ["sealed to Alice's first key", "sealed to Alice's second key"]
    assert alice.keystore.encryption_key_by_id(first_key) is None
    assert after_grace == ["", "sealed to Alice's second key"]
    for client in (mediator, alice):
        await client.aclose()


async def test_a_rotated_key_is_what_senders_encrypt_to(
    app: FastAPI, identity: IdentityService, tmp_path: Path
) -> None:
    clock = FakeClock(system_clock())
    mediator = await _enroll(app, identity, tmp_path / "m", Role.MEDIATOR, "Mona", clock)
    alice = await _enroll(app, identity, tmp_path / "a", Role.PARTY, "Alice", clock)
    room = await mediator.create_room("Talks")
    await mediator.add_member(room.room_id, alice.whoami()["account_id"], Side.A)

    new_key = await alice.rotate_encryption_key()
    account = await mediator.account(alice.whoami()["account_id"])

    device = account.devices[alice.whoami()["device_id"]]
    assert device.encryption_key_id == new_key
    for client in (mediator, alice):
        await client.aclose()
