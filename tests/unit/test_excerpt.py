"""Verifiable excerpts (issue 8): an outsider checks chosen messages offline, and any
tampering fails with a reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.excerpt import Excerpt, build_excerpt, parse_excerpt, verify_excerpt
from client_sdk.protocol.models import Side
from client_sdk.protocol.note import format_verifier_key
from tests.support.excerpts import HOST, ROOM, T0, World


@pytest.fixture(scope="module")
def world() -> World:
    w = World()
    w.publish_roster([w.mediator, w.alice, w.bob])
    w.send(w.alice, "We hold four detainees.")  # index 1
    w.send(w.bob, "We hold six.")  # 2
    w.send(w.alice, "Names to the mediator only.", channel="caucus-a")  # 3
    w.publish_roster([w.mediator, w.alice, w.bob], title="Talks, day 2")  # 4
    w.send(w.mediator, "Exchange at the northern crossing, Tuesday.")  # 5
    w.send(w.bob, "Agreed.")  # 6
    return w


@pytest.fixture(scope="module")
def excerpt(world: World) -> Excerpt:
    return world.excerpt([1, 5, 6])


def log_vkey(world: World) -> str:
    return format_verifier_key("parley-log-key", world.log_key.public_key().public_bytes_raw())


def test_an_outsider_verifies_chosen_messages_with_sender_side_channel_and_time(
    world: World, excerpt: Excerpt
) -> None:
    messages = verify_excerpt(parse_excerpt(excerpt.to_json()), log_key=log_vkey(world))
    assert [(m.leaf_index, m.sender_name, m.side, m.channel) for m in messages] == [
        (1, "Alice of A", Side.A, "plenary"),
        (5, "Mediator", Side.MEDIATOR, "plenary"),
        (6, "Bob of B", Side.B, "plenary"),
    ]
    assert dict(messages[1].content) == {
        "type": "text",
        "body": "Exchange at the northern crossing, Tuesday.",
    }
    assert [m.roster_version for m in messages] == [1, 2, 2]
    assert messages[0].logged_at == T0 + 1
    assert messages[0].sender_account == "acc-alice"
    assert messages[0].room_id == ROOM


def test_a_caucus_message_shows_its_channel(world: World) -> None:
    [message] = verify_excerpt(world.excerpt([3]))
    assert (message.channel, message.side) == ("caucus-a", Side.A)


def test_the_excerpt_holds_only_what_the_chosen_messages_need(world: World) -> None:
    excerpt = world.excerpt([1])
    assert [m.entry.index for m in excerpt.messages] == [1]
    assert [r.statement.body["version"] for r in excerpt.rosters] == [1]
    accounts = {d.statement.body["account_id"] for d in excerpt.directory}
    assert accounts == {"acc-alice", "acc-mediator"}
    text = excerpt.to_json().decode()
    for index in (2, 3, 5, 6):
        other = world.messages[index]
        assert other.content_key not in text
        assert other.envelope.ciphertext not in text


def test_a_revealed_content_key_opens_its_message_and_no_other(world: World) -> None:
    excerpt = world.excerpt([1])
    [message] = excerpt.messages
    stolen = message.model_copy(update={"content_key": world.messages[2].content_key})
    with pytest.raises(VerificationError, match="does not match the header's commitment"):
        verify_excerpt(excerpt.model_copy(update={"messages": [stolen]}))


def test_a_log_key_other_than_the_given_one_is_refused(excerpt: Excerpt) -> None:
    other = format_verifier_key("log", Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    with pytest.raises(VerificationError, match="not signed by the log key given"):
        verify_excerpt(excerpt, log_key=other)


def test_a_whole_forged_log_passes_only_without_the_pinned_key(world: World) -> None:
    forger = World()
    forger.mediator, forger.alice, forger.bob = world.mediator, world.alice, world.bob
    forged = forger.excerpt  # a fresh world: its own log key, same people
    forger.directory_items.clear()
    forger.directory.leaves.clear()
    for person in (world.mediator, world.alice, world.bob):
        forger.register(person)
    forger.publish_roster([world.mediator, world.alice, world.bob])
    forger.send(world.alice, "Words Alice never sent in this room's log.")
    verify_excerpt(forged([1]))
    with pytest.raises(VerificationError, match="not signed by the log key given"):
        verify_excerpt(forged([1]), log_key=log_vkey(world))


Tamper = Callable[[dict[str, Any]], None]


def flip(text: str) -> str:
    """The same base64url text with its first byte changed."""
    raw = bytearray(b64d(text))
    raw[0] ^= 1
    return b64e(bytes(raw))


def set_leaf(item: dict[str, Any], **changes: Any) -> None:
    leaf = json.loads(b64d(item["entry"]["leaf"]))
    leaf.update(changes)
    item["entry"]["leaf"] = b64e(json.dumps(leaf, separators=(",", ":"), sort_keys=True).encode())


TAMPERINGS: dict[str, tuple[Tamper, str]] = {
    "ciphertext": (
        lambda e: e["messages"][0]["envelope"].update(
            ciphertext=flip(e["messages"][0]["envelope"]["ciphertext"])
        ),
        "ciphertext does not match",
    ),
    "content key": (
        lambda e: e["messages"][0].update(content_key=flip(e["messages"][0]["content_key"])),
        "commitment",
    ),
    "header": (
        lambda e: e["messages"][0]["envelope"]["header"].update(sent_at=T0),
        "bad envelope signature",
    ),
    "signature": (
        lambda e: e["messages"][0]["envelope"].update(
            signature=flip(e["messages"][0]["envelope"]["signature"])
        ),
        "bad envelope signature",
    ),
    "a wrap": (
        lambda e: e["messages"][0]["envelope"]["wraps"].update(
            {k: flip(v) for k, v in list(e["messages"][0]["envelope"]["wraps"].items())[:1]}
        ),
        "bad envelope signature",
    ),
    "leaf time": (lambda e: set_leaf(e["messages"][0], server_time=T0 - 5), "not included"),
    "leaf index": (lambda e: e["messages"][0]["entry"].update(index=2), "index does not match"),
    "proof": (
        lambda e: e["messages"][0]["entry"]["proof"].__setitem__(
            0, flip(e["messages"][0]["entry"]["proof"][0])
        ),
        "not included",
    ),
    "room checkpoint": (
        lambda e: e["room_log"].update(
            checkpoint=e["room_log"]["checkpoint"].replace("\n7\n", "\n8\n", 1)
        ),
        "bad signature",
    ),
    "directory checkpoint": (
        lambda e: e["directory_log"].update(
            checkpoint=e["directory_log"]["checkpoint"].replace("\n6\n", "\n5\n", 1)
        ),
        "bad signature",
    ),
    "roster": (
        lambda e: e["rosters"][0]["statement"]["body"]["members"][1].update(side="b"),
        "bad roster signature",
    ),
    "registration": (
        lambda e: e["directory"][0]["statement"]["body"].update(name="Someone"),
        "bad registration signature",
    ),
    "device key": (
        lambda e: e["directory"][1]["statement"]["body"].update(
            signing_key=b64e(Ed25519PrivateKey.generate().public_key().public_bytes_raw())
        ),
        "bad device-cert signature",
    ),
    "missing device": (lambda e: e["directory"].pop(1), "does not prove device"),
    "missing roster": (lambda e: e["rosters"].pop(), "roster version 2 is not shown"),
    "repeated message": (lambda e: e["messages"].append(e["messages"][0]), "appears twice"),
    "room id": (lambda e: e.update(room_id="room-2"), "not named for room room-2"),
    "log key": (
        lambda e: e["room_log"].update(
            log_key=format_verifier_key(
                f"{HOST}/rooms/{ROOM}",
                Ed25519PrivateKey.generate().public_key().public_bytes_raw(),
            )
        ),
        "different keys",
    ),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_fails_with_a_reason(excerpt: Excerpt, name: str) -> None:
    tamper, reason = TAMPERINGS[name]
    data = json.loads(excerpt.to_json())
    tamper(data)
    with pytest.raises(VerificationError, match=reason):
        verify_excerpt(parse_excerpt(json.dumps(data).encode()))


def test_a_message_sealed_to_other_devices_than_its_channel_is_refused(world: World) -> None:
    excerpt = world.excerpt([3])
    data = json.loads(excerpt.to_json())
    data["messages"][0]["envelope"]["header"]["channel"] = "plenary"
    with pytest.raises(VerificationError, match="not sealed to exactly the devices of plenary"):
        verify_excerpt(parse_excerpt(json.dumps(data).encode()))


def test_a_message_posted_by_a_side_outside_its_channel_is_refused() -> None:
    w = World()
    w.publish_roster([w.mediator, w.alice, w.bob])
    index = w.send(w.bob, "Into side A's caucus.", channel="caucus-a")
    with pytest.raises(VerificationError, match="side b does not post in caucus-a"):
        verify_excerpt(w.excerpt([index]))


def test_building_without_the_roster_a_message_needs_is_refused(world: World) -> None:
    excerpt = world.excerpt([5])
    with pytest.raises(ProtocolError, match="roster version 1 is needed"):
        build_excerpt(
            room_id=ROOM,
            room_log=excerpt.room_log,
            directory_log=excerpt.directory_log,
            messages=excerpt.messages,
            rosters=excerpt.rosters[1:],
            directory=excerpt.directory,
        )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"{}",
        b'{"format": "parley-excerpt"}',
        b"\xff\xfe",
        b"[" * 100_000,
    ],
)
def test_a_malformed_file_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_excerpt(data)


def test_an_unknown_field_is_refused(excerpt: Excerpt) -> None:
    data = json.loads(excerpt.to_json())
    data["messages"][0]["note"] = "added"
    with pytest.raises(ProtocolError, match="Extra inputs are not permitted"):
        parse_excerpt(json.dumps(data).encode())
