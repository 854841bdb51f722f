"""Several `parley` processes on one profile lose nothing (issue 7).

While Rita's `parley read ROOM --follow` runs (and writes checkpoints and pins
into her keystore as messages arrive), her other `parley` processes verify a
contact and rotate her encryption key, and messages keep coming. The follower
must neither write its older view over those changes nor miss the new key:
afterwards her contact is still verified, the new private key is in the
keystore, every checkpoint and anchor is kept, and every message, including
those sealed to the new key, reads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from client_sdk.keystore import Keystore
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.models import Side
from tests.conftest import PASSPHRASE
from tests.e2e.conftest import OpenClient
from tests.e2e.harness import Cast, Deployment, profile_env
from tests.support.cli import CliProcess, parley

pytestmark = pytest.mark.slow

TIMEOUT = 30.0


async def _enroll(deployment: Deployment, home: Path, name: str) -> str:
    """A new party enrolled the operator's way, with its profile at `home`; its account id."""
    issued = await parley(
        ["admin", "enroll", "--role", "party", "--name", name], env=deployment.env
    )
    token = issued.ok().stdout.strip()
    enrolled = await parley(
        ["enroll", "--server", deployment.url, "--token", token, "--json"], env=profile_env(home)
    )
    return str(enrolled.json()["account_id"])


async def _send(env: dict[str, str], room: str, text: str) -> int:
    """`parley send` in a process of its own; the message's sequence number."""
    sent = await parley(["send", room, text, "--json"], env=env)
    return int(sent.json()["seq"])


def _key_ids(listed: list[dict[str, Any]]) -> tuple[str, set[str]]:
    """The current key id and all key ids of `parley keys list --json`."""
    current = [k["key_id"] for k in listed if k["published"] and k["retired_at"] is None]
    assert len(current) == 1, listed
    return current[0], {k["key_id"] for k in listed}


async def test_a_follower_keeps_what_other_processes_on_its_profile_changed(
    deployment: Deployment, cast: Cast, open_client: OpenClient, tmp_path: Path
) -> None:
    rita_home = tmp_path / "rita"
    rita_id = await _enroll(deployment, rita_home, "Rita Reader")
    rita, bob = profile_env(rita_home), cast.bob.env
    mediator = open_client(cast.mediator)
    room = (await mediator.create_room("Shared profile")).room_id
    await mediator.add_member(room, rita_id, Side.A)
    await mediator.add_member(room, cast.bob.account_id, Side.B)
    before_rotation, _ = _key_ids((await parley(["keys", "list", "--json"], env=rita)).json())

    follower = CliProcess(
        ["read", room, "--follow", "--json"], env=rita, stderr_path=tmp_path / "follower.err"
    )
    printed: list[dict[str, Any]] = []
    try:
        sent = [await _send(bob, room, "one")]
        printed.append(await follower.next_json(TIMEOUT))  # the follower has written its view

        # Rita verifies Bob while he sends: the follower writes its checkpoint then.
        number = (await parley(["fingerprint", cast.bob.account_id], env=rita)).ok().stdout
        verified, seq = await asyncio.gather(
            parley(["verify", cast.bob.account_id, number.strip()], env=rita),
            _send(bob, room, "two, during the verification"),
        )
        verified.ok()
        sent.append(seq)
        printed.append(await follower.next_json(TIMEOUT))

        # Rita rotates her key while Bob sends (to the old key or the new one),
        # then Bob sends to the new key only.
        rotated, seq = await asyncio.gather(
            parley(["keys", "rotate"], env=rita), _send(bob, room, "three, during the rotation")
        )
        rotated.ok()
        sent.append(seq)
        sent.append(await _send(bob, room, "four, sealed to the new key"))
        printed.extend([await follower.next_json(TIMEOUT) for _ in range(2)])
    finally:
        follower.stop()

    texts = [
        "one",
        "two, during the verification",
        "three, during the rotation",
        "four, sealed to the new key",
    ]
    assert [(m["seq"], m["text"]) for m in printed] == list(zip(sent, texts, strict=True))

    current, all_ids = _key_ids((await parley(["keys", "list", "--json"], env=rita)).json())
    assert current != before_rotation
    assert all_ids == {current, before_rotation}
    keystore = Keystore.open(rita_home, PASSPHRASE)
    assert keystore.is_verified(cast.bob.account_id)
    new_key = keystore.encryption_key_by_id(current)
    assert new_key is not None
    assert new_key.private.public_bytes() == new_key.public
    state = keystore.state
    assert state.checkpoints[room].size > max(m["leaf_index"] for m in printed)
    assert state.checkpoints[DIRECTORY_LOG_ID].size > 0
    assert set(state.log_keys) >= {room, DIRECTORY_LOG_ID}
    assert state.roster_heads[room].version == 3  # created, Rita added, Bob added

    again = (await parley(["read", room, "--json"], env=rita)).json_lines()
    assert [m["text"] for m in again] == texts
