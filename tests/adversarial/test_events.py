"""A lying event page: the reader refuses anything it cannot vouch for, never returns it.

Each event's leaf must be in the room log under a checkpoint the reader
verified, at the index its sequence number says; each envelope is checked
against its sender's signature, the roster it names and where it sits in the
room; a message is delivered once. Tampering on the wire is caught by the
first check it breaks; tampering the operator logs first must be caught by the
checks after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from client_sdk import VerificationError
from client_sdk.protocol.keys import SigningKey, key_id
from client_sdk.protocol.models import Side
from tests.adversarial.conftest import open_room
from tests.support.attacks import Talks, account_id, device_id, read_into, seal_from, served_roster
from tests.support.hostile import edit_event, edit_events, flip_bit

Tamper = Callable[[dict[str, Any], Talks], None]
"""Changes an envelope (its JSON) in place."""

_OFFER = "We accept the terms."
_NOT_THE_LEAF = "the leaf's [a-z_0-9]+ does not match the event"


def _flip_ciphertext(envelope: dict[str, Any], _talks: Talks) -> None:
    envelope["ciphertext"] = flip_bit(envelope["ciphertext"])


def _shift_sent_at(envelope: dict[str, Any], _talks: Talks) -> None:
    envelope["header"]["sent_at"] += 1


def _flip_readers_wrap(envelope: dict[str, Any], talks: Talks) -> None:
    wraps = envelope["wraps"]
    wraps[device_id(talks.alice)] = flip_bit(wraps[device_id(talks.alice)])


def _drop_a_recipient(envelope: dict[str, Any], talks: Talks) -> None:
    mediator = device_id(talks.mediator)
    envelope["header"]["recipients"].remove(mediator)
    del envelope["wraps"][mediator]


def _add_a_listener(envelope: dict[str, Any], _talks: Talks) -> None:
    listener = key_id(SigningKey.generate().public_bytes())
    envelope["header"]["recipients"] = sorted([*envelope["header"]["recipients"], listener])
    envelope["wraps"][listener] = next(iter(envelope["wraps"].values()))


def _reattribute_to_the_mediator(envelope: dict[str, Any], talks: Talks) -> None:
    envelope["header"]["sender_device"] = device_id(talks.mediator)


def _move_to_another_room(envelope: dict[str, Any], _talks: Talks) -> None:
    envelope["header"]["room_id"] = "another-room"


@pytest.mark.parametrize(
    ("tamper", "refusal"),
    [
        # The leaf commits to what the sender signed, not to the ciphertext itself.
        pytest.param(_flip_ciphertext, "ciphertext does not match", id="ciphertext"),
        pytest.param(_shift_sent_at, _NOT_THE_LEAF, id="header-field"),
        pytest.param(_flip_readers_wrap, _NOT_THE_LEAF, id="wrap"),
        pytest.param(_drop_a_recipient, _NOT_THE_LEAF, id="recipients"),
        pytest.param(_reattribute_to_the_mediator, _NOT_THE_LEAF, id="sender-device"),
    ],
)
async def test_a_message_event_tampered_on_the_wire_is_refused(
    talks: Talks, tamper: Tamper, refusal: str
) -> None:
    await talks.bob.send(talks.room_id, _OFFER)

    def rewrite(event: dict[str, Any]) -> None:
        tamper(event["payload"], talks)
        event["sender_device"] = event["payload"]["header"]["sender_device"]

    talks.server.rewrite_response("GET", talks.events_path, edit_event(4, rewrite))

    read: list[str] = []
    with pytest.raises(VerificationError, match=f"(event 4|index 3)\\b.*{refusal}"):
        await read_into(read, talks.alice, talks.room_id)
    assert read == []


@pytest.mark.parametrize(
    ("tamper", "refusal"),
    [
        pytest.param(_shift_sent_at, "bad envelope signature", id="header-field"),
        pytest.param(_add_a_listener, "recipients are not the devices of", id="listener"),
        pytest.param(_reattribute_to_the_mediator, "bad envelope signature", id="sender-device"),
        pytest.param(_move_to_another_room, "misaddressed", id="room"),
    ],
)
async def test_a_tampered_message_the_operator_logged_is_refused(
    talks: Talks, tamper: Tamper, refusal: str
) -> None:
    envelope = seal_from(
        talks.bob,
        talks.room_id,
        _OFFER,
        roster_version=3,
        to=[talks.mediator, talks.alice, talks.bob],
    ).model_dump(mode="json")
    tamper(envelope, talks)
    seq = await talks.operator.store_envelope(talks.room_id, envelope)

    read: list[str] = []
    with pytest.raises(VerificationError, match=f"room {talks.room_id}: event {seq}\\b.*{refusal}"):
        await read_into(read, talks.alice, talks.room_id)
    assert read == []


async def test_a_tampered_message_from_before_the_reader_joined_is_refused(talks: Talks) -> None:
    room = await open_room(talks.mediator, a=[], b=[talks.bob])
    await talks.bob.send(room, "Between us: we accept.")
    await talks.mediator.add_member(room, account_id(talks.alice), Side.A)
    talks.server.rewrite_response(
        "GET",
        f"/v1/rooms/{room}/events",
        edit_event(3, lambda event: _flip_ciphertext(event["payload"], talks)),
    )

    with pytest.raises(VerificationError, match=f"room {room}: event 3: ciphertext does not match"):
        [m async for m in talks.alice.messages(room)]


async def test_messages_swapped_and_renumbered_are_detected(talks: Talks) -> None:
    await talks.bob.send(talks.room_id, "First.")
    await talks.bob.send(talks.room_id, "Second.")

    def swap(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fourth, fifth = page[3], page[4]
        return [*page[:3], {**fifth, "seq": 4}, {**fourth, "seq": 5}]

    talks.server.rewrite_response("GET", talks.events_path, edit_events(swap))

    with pytest.raises(VerificationError, match=r"event 4|index 3"):
        [m async for m in talks.alice.messages(talks.room_id)]


async def test_a_message_dropped_and_renumbered_over_is_detected(talks: Talks) -> None:
    await talks.bob.send(talks.room_id, "First.")
    await talks.bob.send(talks.room_id, "Second.")
    talks.server.rewrite_response(
        "GET", talks.events_path, edit_events(lambda page: [*page[:3], {**page[4], "seq": 4}])
    )

    with pytest.raises(VerificationError, match=r"event 4|index 3"):
        [m async for m in talks.alice.messages(talks.room_id)]


async def test_a_replayed_roster_with_a_new_seq_is_refused(talks: Talks) -> None:
    await talks.operator.store_roster(
        talks.room_id, await served_roster(talks.mediator, talks.room_id, 2)
    )

    with pytest.raises(VerificationError, match="event 4 replays roster version 2 of event 2"):
        [m async for m in talks.alice.messages(talks.room_id)]


async def test_reading_a_room_again_is_not_mistaken_for_a_replay(talks: Talks) -> None:
    await talks.bob.send(talks.room_id, _OFFER)

    first = [(m.seq, m.text) async for m in talks.alice.messages(talks.room_id)]
    again = [(m.seq, m.text) async for m in talks.alice.messages(talks.room_id)]

    assert first == again == [(4, _OFFER)]
