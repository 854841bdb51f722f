"""`parley room ... --mediator-vouches`, `parley room vouch` and "verified via mediator",
as a user runs them: `parley` subprocesses against the app served over TCP (`live`).

Mona mediates; she compares safety numbers with Alice and Bob; Alice compares hers with
Mona only, and counts Bob verified because Mona's signed roster vouches for him.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Role
from server.services.identity import IdentityService
from tests.conftest import PASSPHRASE, TEST_SCRYPT_N, LiveServer
from tests.support.cli import CliResult, cli_env, parley, run_parallel


@dataclass(frozen=True, slots=True)
class People:
    """Mona (mediator), Alice and Bob, each with a profile the `parley` command uses."""

    mona: ParleyClient
    alice: ParleyClient
    bob: ParleyClient

    def env(self, who: ParleyClient) -> dict[str, str]:
        return cli_env(PARLEY_HOME=str(who.keystore.home), PARLEY_PASSPHRASE=PASSPHRASE)


@pytest.fixture
async def people(app: FastAPI, live: LiveServer, tmp_path: Path) -> AsyncIterator[People]:
    identity: IdentityService = app.state.services.identity
    clients = []
    for role, name in ((Role.MEDIATOR, "Mona"), (Role.PARTY, "Alice"), (Role.PARTY, "Bob")):
        ticket = await identity.create_enrollment(role=role, name=name)
        clients.append(
            await ParleyClient.enroll(
                server=live.url,
                token=ticket.token,
                home=tmp_path / name.lower(),
                passphrase=PASSPHRASE,
                transport=httpx.ASGITransport(app=app),
                scrypt_n=TEST_SCRYPT_N,
            )
        )
    yield People(*clients)
    for client in clients:
        await client.aclose()


def _id(client: ParleyClient) -> str:
    return client.keystore.state.account_id


async def _verify(people: People, who: ParleyClient, other: ParleyClient) -> CliResult:
    number = await other.safety_number(_id(who))
    return await parley(["verify", _id(other), number], env=people.env(who))


def _members(show: CliResult) -> dict[str, tuple[bool, str, str]]:
    return {
        m["name"]: (m["verified"], m["trust"], m["trust_reason"]) for m in show.json()["members"]
    }


def _oneline(text: str) -> str:
    return " ".join(text.split())


async def test_a_member_who_verified_the_mediator_sees_the_others_verified_via_mediator(
    people: People,
) -> None:
    mona, alice, bob = people.mona, people.alice, people.bob
    (await _verify(people, mona, alice)).ok()
    (await _verify(people, mona, bob)).ok()
    created = await parley(
        ["room", "create", "Talks", "--require-verified", "--mediator-vouches"],
        env=people.env(mona),
    )
    room = created.ok().stdout.strip()
    for account, side in ((_id(alice), "a"), (_id(bob), "b")):
        added = ["room", "add", room, account, "--side", side]
        (await parley(added, env=people.env(mona))).ok()

    show, refused = await asyncio.to_thread(
        run_parallel,
        [
            (["room", "show", room, "--json"], people.env(alice)),
            (["send", room, "Our first offer."], people.env(alice)),
        ],
    )
    assert show.json()["mediator_vouches"] is True
    verified, trust, reason = _members(show)["Bob"]
    assert (verified, trust) == (False, "none")
    assert "you have not verified the mediator" in reason
    assert refused.returncode == 1, refused.describe()
    assert "is not verified" in _oneline(refused.stderr)

    (await _verify(people, alice, mona)).ok()
    show, table, sent = await asyncio.to_thread(
        run_parallel,
        [
            (["room", "show", room, "--json"], people.env(alice)),
            (["room", "show", room], people.env(alice)),
            (["send", room, "Our first offer."], people.env(alice)),
        ],
    )
    assert _members(show)["Bob"] == (True, "mediator", f"verified via mediator Mona ({_id(mona)})")
    assert _members(show)["Mona"][:2] == (True, "direct")
    assert "via mediator" in table.ok().stdout
    assert "mediator_vouches=True" in _oneline(table.stdout)
    sent.ok()


async def test_room_vouch_and_the_policy_switch_say_what_they_did(people: People) -> None:
    mona, alice, bob = people.mona, people.alice, people.bob
    (await _verify(people, mona, alice)).ok()
    room = (await parley(["room", "create", "Talks"], env=people.env(mona))).ok().stdout.strip()
    (await parley(["room", "add", room, _id(alice), "--side", "a"], env=people.env(mona))).ok()

    not_vouching = await parley(["room", "vouch", room], env=people.env(mona))
    switched = await parley(["room", "policy", room, "--mediator-vouches"], env=people.env(mona))
    again = await parley(["room", "vouch", room], env=people.env(mona))
    (await parley(["room", "add", room, _id(bob), "--side", "b"], env=people.env(mona))).ok()
    (await _verify(people, mona, bob)).ok()
    vouched = await parley(["room", "vouch", room], env=people.env(mona))
    party = await parley(["room", "vouch", room], env=people.env(alice))

    assert not_vouching.returncode == 1, not_vouching.describe()
    assert "its policy does not take vouches" in _oneline(not_vouching.stderr)
    assert "mediator_vouches=True" in _oneline(switched.ok().stdout)
    assert again.returncode == 1, again.describe()
    assert "vouches for every member you verified already" in _oneline(again.stderr)
    assert vouched.ok().stdout == "Roster version 5 vouches for every member you verified.\n"
    assert party.returncode == 1, party.describe()
    assert "Traceback" not in party.stderr
