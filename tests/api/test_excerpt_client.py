"""Excerpts made by a member's SDK against a real app, verified as an outsider would."""

from __future__ import annotations

import pytest

from client_sdk.client import ParleyClient
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.excerpt import parse_excerpt, verify_excerpt
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import Action
from tests.conftest import EnrollFactory


async def _room(enroll: EnrollFactory) -> tuple[str, ParleyClient, ParleyClient, ParleyClient]:
    mona = await enroll(role=Role.MEDIATOR, name="Mona")
    alice = await enroll(name="Alice")
    bob = await enroll(name="Bob")
    room = await mona.create_room("Exchange talks")
    await mona.add_member(room.room_id, alice.whoami()["account_id"], Side.A)
    await mona.add_member(room.room_id, bob.whoami()["account_id"], Side.B)
    return room.room_id, mona, alice, bob


async def test_an_excerpt_of_chosen_messages_verifies_offline(enroll: EnrollFactory) -> None:
    room_id, mona, alice, bob = await _room(enroll)
    first = await alice.send(room_id, "We propose a one-for-one exchange.")
    await mona.moderate(room_id, Action.OPEN_CAUCUS, side=Side.A)
    await alice.send(room_id, "our real floor", channel="caucus-a")
    third = await bob.send(room_id, "We accept in principle.")

    excerpt = await alice.excerpt(room_id, [third.seq, first.seq])
    messages = verify_excerpt(parse_excerpt(excerpt.to_json()), excerpt.room_log.log_key)

    assert [(m.leaf_index + 1, m.sender_name, m.side, m.channel) for m in messages] == [
        (first.seq, "Alice", Side.A, "plenary"),
        (third.seq, "Bob", Side.B, "plenary"),
    ]
    assert [m.content["text"] for m in messages] == [
        "We propose a one-for-one exchange.",
        "We accept in principle.",
    ]
    assert b"our real floor" not in excerpt.to_json()
    assert alice.keystore.log_key(room_id) == excerpt.room_log.log_key


async def test_a_tampered_excerpt_fails_with_a_reason(enroll: EnrollFactory) -> None:
    room_id, _, alice, _ = await _room(enroll)
    sent = await alice.send(room_id, "Ten for ten.")
    data = (await alice.excerpt(room_id, [sent.seq])).to_json()
    other = data.replace(b'"content_key":"', b'"content_key":"A', 1)

    with pytest.raises((VerificationError, ProtocolError)):
        verify_excerpt(parse_excerpt(other))


async def test_an_excerpt_refuses_what_is_not_a_message_of_this_device(
    enroll: EnrollFactory,
) -> None:
    room_id, mona, alice, bob = await _room(enroll)
    await mona.moderate(room_id, Action.OPEN_CAUCUS, side=Side.A)
    secret = await alice.send(room_id, "our real floor", channel="caucus-a")

    with pytest.raises(ProtocolError, match="not a message"):
        await alice.excerpt(room_id, [1])
    with pytest.raises(ProtocolError, match="not sealed to this device"):
        await bob.excerpt(room_id, [secret.seq])
