"""A lying room: membership is only what the mediators' signed roster chain says.

Each roster version is signed by a mediator of the version before and chains
to it by hash (version 1 by a mediator listed in itself). The server stores
and serves the chain; it can neither extend it, nor fork it, nor wind it back
to a version that still lists someone since removed.
"""

from __future__ import annotations

import pytest

from client_sdk import UntrustedKeyError, VerificationError
from client_sdk.client import ParleyClient
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.keys import SigningKey, key_id
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import Roster, RosterDevice
from tests.adversarial.conftest import EnrollThrough, open_room
from tests.conftest import PASSPHRASE
from tests.support.attacks import (
    Talks,
    account_id,
    device_id,
    eavesdropper,
    next_roster,
    roster_member,
    serve_as_current_roster,
    served_roster,
)


def _servers_device() -> RosterDevice:
    key = SigningKey.generate()
    return RosterDevice(device_id=key_id(key.public_bytes()), signing_key=b64e(key.public_bytes()))


async def test_a_roster_adding_a_device_signed_by_a_party_is_refused(talks: Talks) -> None:
    current = await served_roster(talks.mediator, talks.room_id, 3)
    bob = account_id(talks.bob)
    members = [
        m.model_copy(update={"devices": [*m.devices, _servers_device()]})
        if m.account_id == bob
        else m
        for m in Roster.model_validate(current.body).members
    ]
    forged = next_roster(
        current,
        members=members,
        signer=talks.bob.keystore.state.device_key,
        signer_device=device_id(talks.bob),
    )
    serve_as_current_roster(talks.server, talks.room_id, forged)

    with pytest.raises(VerificationError, match="roster version 4 is not signed by a mediator"):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_a_roster_signed_by_a_mediator_outside_the_room_is_refused(
    talks: Talks, enroll_through: EnrollThrough
) -> None:
    # The operator enrolls mediators, so a directory role proves nothing by itself.
    rogue = await enroll_through(role=Role.MEDIATOR, name="Rogue")
    current = await served_roster(talks.mediator, talks.room_id, 3)
    forged = next_roster(
        current,
        members=[*Roster.model_validate(current.body).members, roster_member(rogue, Side.MEDIATOR)],
        signer=rogue.keystore.state.device_key,
        signer_device=device_id(rogue),
    )
    serve_as_current_roster(talks.server, talks.room_id, forged)

    with pytest.raises(VerificationError, match="roster version 4 is not signed by a mediator"):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_a_rolled_back_roster_version_is_refused(talks: Talks) -> None:
    await talks.mediator.remove_member(talks.room_id, account_id(talks.bob))
    assert (await talks.alice.room(talks.room_id)).roster_version == 4
    still_with_bob = await served_roster(talks.mediator, talks.room_id, 3)
    serve_as_current_roster(talks.server, talks.room_id, still_with_bob)

    with pytest.raises(
        VerificationError,
        match="shows roster version 3, older than version 4 already verified",
    ):
        await talks.alice.send(talks.room_id, "Bob must not read this.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_a_different_roster_for_a_verified_version_is_refused(talks: Talks) -> None:
    assert (await talks.alice.room(talks.room_id)).roster_version == 3
    version_2 = await served_roster(talks.mediator, talks.room_id, 2)
    fork = next_roster(
        version_2,
        members=[*Roster.model_validate(version_2.body).members, eavesdropper()],
        signer=talks.mediator.keystore.state.device_key,
        signer_device=device_id(talks.mediator),
    )
    serve_as_current_roster(talks.server, talks.room_id, fork)

    with pytest.raises(VerificationError, match="the server's roster differs from the chain"):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_a_second_roster_for_a_version_in_the_log_is_refused(talks: Talks) -> None:
    # The mediator's key signs two different version 3s (equivocation, or a stolen key);
    # the operator logs the second after the first.
    version_2 = await served_roster(talks.mediator, talks.room_id, 2)
    fork = next_roster(
        version_2,
        members=[*Roster.model_validate(version_2.body).members, eavesdropper()],
        signer=talks.mediator.keystore.state.device_key,
        signer_device=device_id(talks.mediator),
    )
    await talks.operator.store_roster(talks.room_id, fork)

    with pytest.raises(VerificationError, match="two different rosters for version 3"):
        [m async for m in talks.alice.messages(talks.room_id)]


async def test_a_reopened_profile_refuses_a_roster_older_than_one_verified_before(
    talks: Talks,
) -> None:
    await talks.mediator.remove_member(talks.room_id, account_id(talks.bob))
    assert (await talks.alice.room(talks.room_id)).roster_version == 4
    serve_as_current_roster(
        talks.server, talks.room_id, await served_roster(talks.mediator, talks.room_id, 3)
    )
    keystore = Keystore.open(talks.alice.keystore.home, PASSPHRASE)

    async with ParleyClient(keystore, transport=talks.server) as reopened:
        with pytest.raises(VerificationError, match="shows roster version 3, older than version 4"):
            await reopened.send(talks.room_id, "Bob must not read this.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_a_reopened_profile_refuses_a_different_roster_for_a_version_verified_before(
    talks: Talks,
) -> None:
    assert (await talks.alice.room(talks.room_id)).roster_version == 3
    version_2 = await served_roster(talks.mediator, talks.room_id, 2)
    fork = next_roster(
        version_2,
        members=[*Roster.model_validate(version_2.body).members, eavesdropper()],
        signer=talks.mediator.keystore.state.device_key,
        signer_device=device_id(talks.mediator),
    )
    serve_as_current_roster(talks.server, talks.room_id, fork)
    keystore = Keystore.open(talks.alice.keystore.home, PASSPHRASE)

    async with ParleyClient(keystore, transport=talks.server) as reopened:
        with pytest.raises(VerificationError, match="two different rosters for version 3"):
            await reopened.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_the_server_cannot_lift_a_rooms_verification_requirement(talks: Talks) -> None:
    alice, bob, mona = (account_id(c) for c in (talks.alice, talks.bob, talks.mediator))
    room = await open_room(talks.mediator, a=[talks.alice], b=[talks.bob], require_verified=True)
    await talks.alice.verify_contact(mona, await talks.mediator.safety_number(alice))
    talks.server.rewrite_response(  # the field the room answer used to carry, unsigned
        "GET", f"/v1/rooms/{room}", lambda data: {**data, "require_verified": False}
    )

    with pytest.raises(UntrustedKeyError, match=f"account {bob} is not verified"):
        await talks.alice.send(room, "Our first offer.")
