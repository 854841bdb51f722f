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
from client_sdk.protocol.keys import EncryptionKey
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


async def _talks(
    app: FastAPI, identity: IdentityService, tmp_path: Path, clock: FakeClock
) -> tuple[ParleyClient, ParleyClient, str]:
    """Mona (mediator) and Alice (side a) in a new room: the two clients and the room id."""
    mediator = await _enroll(app, identity, tmp_path / "m", Role.MEDIATOR, "Mona", clock)
    alice = await _enroll(app, identity, tmp_path / "a", Role.PARTY, "Alice", clock)
    room = await mediator.create_room("Talks")
    await mediator.add_member(room.room_id, alice.whoami()["account_id"], Side.A)
    return mediator, alice, room.room_id


async def test_keys_rotate_weekly_and_old_private_keys_are_deleted_after_the_grace_period(
    app: FastAPI, identity: IdentityService, tmp_path: Path
) -> None:
    clock = FakeClock(system_clock())
    mediator, alice, room_id = await _talks(app, identity, tmp_path, clock)
    first_key = alice.keystore.current_encryption_key().key_id
    await mediator.send(room_id, "sealed to Alice's first key")

    clock.now += ROTATE_AFTER_MS + DAY_MS
    await alice.maintain_keys()
    second_key = alice.keystore.current_encryption_key().key_id
    await mediator.send(room_id, "sealed to Alice's second key")
    during_grace = [m.text async for m in alice.messages(room_id)]

    clock.now += RETIRED_KEY_GRACE_MS + DAY_MS
    after_grace = [m.text async for m in alice.messages(room_id)]

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
    mediator, alice, _ = await _talks(app, identity, tmp_path, clock)

    new_key = await alice.rotate_encryption_key()
    account = await mediator.account(alice.whoami()["account_id"])

    device = account.devices[alice.whoami()["device_id"]]
    assert device.encryption_key_id == new_key
    for client in (mediator, alice):
        await client.aclose()


async def test_a_key_from_before_seeds_is_replaced_by_a_seed_key_and_still_opens_old_messages(
    app: FastAPI, identity: IdentityService, tmp_path: Path
) -> None:
    clock = FakeClock(system_clock())
    mediator, alice, room_id = await _talks(app, identity, tmp_path, clock)
    # Alice's key as a keystore of before seeds holds it: its two expanded parts.
    old = alice.keystore.current_encryption_key()
    legacy = EncryptionKey.from_bytes(old.private.mlkem_seed + old.private.x25519_private)
    alice.keystore.update(
        lambda s: s.model_copy(
            update={
                "encryption_keys": tuple(
                    r.model_copy(update={"private": legacy}) if r.key_id == old.key_id else r
                    for r in s.encryption_keys
                )
            }
        )
    )
    await mediator.send(room_id, "sealed to the key from before seeds")

    await alice.maintain_keys()  # not due by age: replaced because it is legacy
    new = alice.keystore.current_encryption_key()
    await mediator.send(room_id, "sealed to the seed key")

    assert new.key_id != old.key_id
    assert not new.private.legacy
    assert len(new.private.private_bytes()) == 32
    assert [m.text async for m in alice.messages(room_id)] == [
        "sealed to the key from before seeds",
        "sealed to the seed key",
    ]
    for client in (mediator, alice):
        await client.aclose()
