"""The core path in-process: enroll, create a room, add parties, send, read."""

from __future__ import annotations

from client_sdk.protocol.models import Role, Side
from tests.conftest import EnrollFactory


async def test_party_message_reaches_the_other_party_and_the_mediator(
    enroll: EnrollFactory,
) -> None:
    mediator = await enroll(role=Role.MEDIATOR, name="Mona")
    alice = await enroll(name="Alice")
    bob = await enroll(name="Bob")
    room = await mediator.create_room("Exchange talks")
    await mediator.add_member(room.room_id, alice.whoami()["account_id"], Side.A)
    await mediator.add_member(room.room_id, bob.whoami()["account_id"], Side.B)

    receipt = await alice.send(room.room_id, "We propose a 1:1 exchange.")

    for reader in (bob, mediator):
        messages = [m async for m in reader.messages(room.room_id)]
        assert [(m.seq, m.sender_name, m.text) for m in messages] == [
            (receipt.seq, "Alice", "We propose a 1:1 exchange.")
        ]
