"""Room policy lives in the mediator-signed roster, so the server cannot change it."""

from __future__ import annotations

import pytest

from client_sdk import ProtocolError, UntrustedKeyError
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.note import SIG_COSIGNATURE_V1, format_verifier_key
from tests.conftest import EnrollFactory


async def test_a_mediator_can_require_verified_contacts_later(enroll: EnrollFactory) -> None:
    mediator = await enroll(role=Role.MEDIATOR, name="Mona")
    alice = await enroll(name="Alice")
    room = await mediator.create_room("Talks")
    await mediator.add_member(room.room_id, alice.whoami()["account_id"], Side.A)
    await alice.send(room.room_id, "before the policy")

    changed = await mediator.set_policy(room.room_id, require_verified=True)

    assert changed.require_verified
    assert changed.roster_version == room.roster_version + 2
    with pytest.raises(UntrustedKeyError, match=mediator.whoami()["account_id"]):
        await alice.send(room.room_id, "after the policy")
    number = await alice.safety_number(mediator.whoami()["account_id"])
    await alice.verify_contact(mediator.whoami()["account_id"], number)
    mediator_number = await mediator.safety_number(alice.whoami()["account_id"])
    await mediator.verify_contact(alice.whoami()["account_id"], mediator_number)
    await alice.send(room.room_id, "verified now")
    texts = [m.text async for m in mediator.messages(room.room_id)]
    assert texts == ["before the policy", "verified now"]


async def test_witness_policy_is_part_of_the_room(enroll: EnrollFactory) -> None:
    mediator = await enroll(role=Role.MEDIATOR, name="Mona")
    witness = format_verifier_key("witness.example", bytes(range(32)), SIG_COSIGNATURE_V1)

    room = await mediator.create_room("Talks", witnesses=[witness], witness_quorum=1)

    shown = await mediator.room(room.room_id)
    assert (shown.witnesses, shown.witness_quorum) == ([witness], 1)


async def test_an_unreachable_quorum_is_refused_before_signing(enroll: EnrollFactory) -> None:
    mediator = await enroll(role=Role.MEDIATOR, name="Mona")
    room = await mediator.create_room("Talks")

    with pytest.raises(ProtocolError, match="witness_quorum"):
        await mediator.set_policy(room.room_id, witness_quorum=2)
