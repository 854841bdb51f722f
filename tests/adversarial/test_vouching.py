"""Verification that scales with delegations: in a room whose signed policy has
``mediator_vouches``, the roster's signer vouches for the members it verified, and a
member who verified that mediator accepts them ("verified via mediator").

Alice (behind the hostile seam) is the member who relies on the vouches; Mona, the
mediator, verifies Alice and Bob by safety number before she signs the rosters.
"""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk import UntrustedKeyError, VerificationError
from client_sdk.client import ParleyClient
from client_sdk.client.vouching import Trust
from client_sdk.keystore import Pin
from client_sdk.protocol.errors import InvalidRequestError, ProtocolError
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.models import Side
from client_sdk.protocol.statements import Roster, SignedStatement, key_fingerprint
from tests.support.attacks import (
    Talks,
    account_id,
    device_id,
    next_roster,
    serve_as_current_roster,
    served_roster,
)
from tests.support.cli import parley
from tests.support.hostile import dump


async def _verify(client: ParleyClient, other: ParleyClient) -> None:
    """`client`'s user compares the safety number with `other`'s and marks it verified."""
    await client.verify_contact(account_id(other), await other.safety_number(account_id(client)))


async def _vouched_room(
    talks: Talks, *, vouch_for: list[ParleyClient], require_verified: bool = True
) -> str:
    """Mona verifies `vouch_for`, then opens a vouching room with Alice (a) and Bob (b)."""
    for client in vouch_for:
        await _verify(talks.mediator, client)
    room = await talks.mediator.create_room(
        "Vouched talks", require_verified=require_verified, mediator_vouches=True
    )
    await talks.mediator.add_member(room.room_id, account_id(talks.alice), Side.A)
    await talks.mediator.add_member(room.room_id, account_id(talks.bob), Side.B)
    return room.room_id


async def _trust(client: ParleyClient, room_id: str) -> dict[str, Trust]:
    room = await client.room(room_id)
    return {m.account_id: m.trust.trust for m in room.members}


async def test_a_member_who_verified_the_mediator_accepts_the_members_it_vouched_for(
    talks: Talks,
) -> None:
    room = await _vouched_room(talks, vouch_for=[talks.alice, talks.bob])
    await _verify(talks.alice, talks.mediator)

    receipt = await talks.alice.send(room, "Our first offer.")

    trust = await _trust(talks.alice, room)
    assert trust[account_id(talks.bob)] is Trust.MEDIATOR
    assert trust[account_id(talks.mediator)] is Trust.DIRECT
    bob = next(m for m in (await talks.alice.room(room)).members if m.side is Side.B)
    assert bob.verified
    assert bob.trust.reason == f"verified via mediator Mona ({account_id(talks.mediator)})"
    assert [m.text async for m in talks.bob.messages(room)] == ["Our first offer."]
    assert receipt.seq == 4


async def test_a_member_who_has_not_verified_the_mediator_gets_nothing_from_its_vouches(
    talks: Talks,
) -> None:
    room = await _vouched_room(talks, vouch_for=[talks.alice, talks.bob], require_verified=False)

    trust = await _trust(talks.alice, room)

    assert trust[account_id(talks.bob)] is Trust.NONE
    bob = next(m for m in (await talks.alice.room(room)).members if m.side is Side.B)
    assert "you have not verified the mediator" in bob.trust.reason
    await talks.mediator.set_policy(room, require_verified=True)
    with pytest.raises(UntrustedKeyError, match="is not verified"):
        await talks.alice.send(room, "Our first offer.")
    assert talks.server.sent("POST", f"/v1/rooms/{room}/messages") == []


async def test_direct_verification_counts_without_a_vouch(talks: Talks) -> None:
    # Mona never verified Bob, so no roster vouches for him; Alice verified him herself.
    room = await _vouched_room(talks, vouch_for=[talks.alice])
    await _verify(talks.alice, talks.mediator)
    await _verify(talks.alice, talks.bob)

    await talks.alice.send(room, "Our first offer.")

    assert (await _trust(talks.alice, room))[account_id(talks.bob)] is Trust.DIRECT
    assert (await _trust(talks.mediator, room))[account_id(talks.bob)] is Trust.NONE


async def test_a_vouch_only_names_whom_the_mediator_verified_when_it_signed(talks: Talks) -> None:
    room = await _vouched_room(talks, vouch_for=[talks.alice])
    await _verify(talks.alice, talks.mediator)
    with pytest.raises(UntrustedKeyError, match=f"account {account_id(talks.bob)} is not verif"):
        await talks.alice.send(room, "Our first offer.")

    await _verify(talks.mediator, talks.bob)
    vouched = await talks.mediator.vouch(room)
    with pytest.raises(ProtocolError, match="vouches for every member you verified"):
        await talks.mediator.vouch(room)

    assert vouched.roster_version == 4
    await talks.alice.send(room, "Our first offer.")
    assert (await _trust(talks.alice, room))[account_id(talks.bob)] is Trust.MEDIATOR


def _with_vouch(signed: SignedStatement, account: str, vouch: str | None) -> list[Any]:
    return [
        m.model_copy(update={"vouched_key_sha256": vouch}) if m.account_id == account else m
        for m in Roster.model_validate(signed.body).members
    ]


async def _vouch_for_another_key(talks: Talks) -> tuple[str, str]:
    """Mona's device signs a vouch for another key than Bob's (a mistaken or a
    compromised mediator): the server refuses it; then it serves it as current anyway."""
    room = await _vouched_room(talks, vouch_for=[talks.alice, talks.bob], require_verified=False)
    await _verify(talks.alice, talks.mediator)
    current = await served_roster(talks.mediator, room, 3)
    bob = account_id(talks.bob)
    other = key_fingerprint(SigningKey.generate().public_bytes())
    forged = next_roster(
        current,
        members=_with_vouch(current, bob, other),
        signer=talks.mediator.keystore.state.device_key,
        signer_device=device_id(talks.mediator),
    )
    with pytest.raises(InvalidRequestError, match="the vouch names another key"):
        await talks.mediator.http.request(
            "POST", f"/v1/rooms/{room}/rosters", json={"roster": dump(forged)}
        )
    serve_as_current_roster(talks.server, room, forged)
    return room, other


async def test_a_vouch_for_another_key_than_the_members_fails_closed(talks: Talks) -> None:
    room, other = await _vouch_for_another_key(talks)
    bob = account_id(talks.bob)

    with pytest.raises(UntrustedKeyError, match=f"key fingerprint {other} of account {bob}"):
        await talks.alice.send(room, "Our first offer.")
    assert talks.server.sent("POST", f"/v1/rooms/{room}/messages") == []
    assert (await _trust(talks.alice, room))[bob] is Trust.REFUSED


async def test_parley_shows_a_refused_vouch_and_sends_nothing(
    talks: Talks, alice_env: dict[str, str]
) -> None:
    room, other = await _vouch_for_another_key(talks)
    bob = account_id(talks.bob)

    show, shown, sent = [
        await parley(args, env=alice_env)
        for args in (
            ["room", "show", room],
            ["room", "show", room, "--json"],
            ["send", room, "Our first offer."],
        )
    ]

    assert "REFUSED" in show.ok().stdout
    assert f"refused: mediator Mona ({account_id(talks.mediator)}) vouched" in _oneline(show.stdout)
    member = next(m for m in shown.json()["members"] if m["account_id"] == bob)
    assert (member["verified"], member["trust"]) == (False, "refused")
    assert other in member["trust_reason"]
    assert sent.returncode == 1, sent.describe()
    assert f"key fingerprint {other} of account {bob}" in _oneline(sent.stderr)
    assert talks.server.sent("POST", f"/v1/rooms/{room}/messages") == []


def _oneline(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("edit", ["strip", "add"])
async def test_a_server_that_strips_or_adds_a_vouch_is_caught_by_the_signature(
    talks: Talks, edit: str
) -> None:
    bob = account_id(talks.bob)
    if edit == "strip":  # Mona vouched for Bob: the server takes it out
        room = await _vouched_room(talks, vouch_for=[talks.alice, talks.bob])
        vouch = None
    else:  # Mona never verified Bob: the server vouches for his real key in her name
        room = await _vouched_room(talks, vouch_for=[talks.alice])
        vouch = key_fingerprint(talks.bob.keystore.state.account_key.public_bytes())
    await _verify(talks.alice, talks.mediator)
    current = await served_roster(talks.mediator, room, 3)
    body = {
        **current.body,
        "members": [m.model_dump(mode="json") for m in _with_vouch(current, bob, vouch)],
    }
    assert body != current.body
    serve_as_current_roster(
        talks.server, room, SignedStatement(body=body, signature=current.signature)
    )

    with pytest.raises(VerificationError, match="roster"):
        await talks.alice.send(room, "Our first offer.")
    assert talks.server.sent("POST", f"/v1/rooms/{room}/messages") == []


async def test_a_vouched_members_key_change_still_fails_closed(talks: Talks) -> None:
    room = await _vouched_room(talks, vouch_for=[talks.alice, talks.bob])
    await _verify(talks.alice, talks.mediator)
    await talks.alice.send(room, "Our first offer.")
    bob = account_id(talks.bob)
    # Alice's profile pinned another key for Bob: his key changed, as far as she knows.
    other = SigningKey.generate().public_bytes()
    talks.alice.keystore.update(
        lambda state: state.model_copy(
            update={"pins": {**state.pins, bob: Pin(account_key=other, first_seen=1)}}
        )
    )

    with pytest.raises(UntrustedKeyError, match=f"the key of account {bob} changed"):
        await talks.alice.send(room, "Our second offer.")
    assert (await _trust(talks.mediator, room))[bob] is Trust.DIRECT
