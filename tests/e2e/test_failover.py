"""Failover between replicas: two `parley serve` processes on one PostgreSQL database
and log key; every profile knows both URLs. Replica 1 is killed (SIGKILL) while
messages are being sent and followed: the SDK follower and a `parley read --follow`
resume on replica 2, every acknowledged message reaches both exactly once and in
order, the senders' sends all land once, and the log then verifies.

Also: a refusal (a 4xx) is the server's verdict and moves no client, and the
profile's list is what `parley enroll --server URL --server URL2` stored and
`parley config servers` shows and sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from client_sdk.client import Message, ParleyClient, Receipt
from client_sdk.protocol.errors import NotFoundError
from client_sdk.protocol.models import Role, Side
from tests.conftest import PASSPHRASE
from tests.e2e.harness import profile_env
from tests.support.cli import CliProcess, parley, run_parley
from tests.support.replicas import (
    enroll,
    enrollment_token,
    postgres_database,
    running_replicas,
)
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]
TIMEOUT = 60.0
BEFORE, DURING = 6, 10
"""Messages sent (by two senders) before the kill, and while it happens."""


@dataclass
class Scene:
    """Two replicas, a room, and Mona (mediator), Alice and Bob, each knowing both URLs:
    Bob's profile made by `parley enroll --server R1 --server R2`."""

    replicas: list[ServerProcess]
    room_id: str
    mona: ParleyClient
    alice: ParleyClient
    bob: ParleyClient
    bob_home: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scene(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scene]:
    root = tmp_path_factory.mktemp("failover")
    async with postgres_database() as database_url:
        with running_replicas(database_url, root, 2) as replicas:
            urls = [r.url for r in replicas]
            bob_token = await enrollment_token(database_url, Role.PARTY, "Bob")
            enrolled = await parley(
                ["enroll", "--server", urls[0], "--server", urls[1], "--token", bob_token],
                env=profile_env(root / "Bob"),
            )
            enrolled.ok()
            clients = [ParleyClient.open(root / "Bob", PASSPHRASE)]
            try:
                for role, name, order in [
                    (Role.MEDIATOR, "Mona", urls[::-1]),  # prefers replica 2
                    (Role.PARTY, "Alice", urls),
                ]:
                    clients.append(
                        await enroll(database_url, role, name, server=order, home=root / name)
                    )
                bob, mona, alice = clients
                room = await mona.create_room("Failover")
                await mona.add_member(room.room_id, alice.whoami()["account_id"], Side.A)
                await mona.add_member(room.room_id, bob.whoami()["account_id"], Side.B)
                yield Scene(replicas, room.room_id, mona, alice, bob, root / "Bob")
            finally:
                for client in clients:
                    await client.aclose()


async def test_a_refusal_is_the_servers_verdict_and_moves_no_client(scene: Scene) -> None:
    with pytest.raises(NotFoundError):
        await scene.bob.send("no-such-room", "hello")

    assert (scene.bob.http.server, scene.bob.http.failovers) == (scene.replicas[0].url, 0)


async def test_followers_resume_on_the_other_replica_when_theirs_is_killed(
    scene: Scene, tmp_path: Path
) -> None:
    first, second = scene.replicas
    room = scene.room_id
    sent: list[Receipt] = []
    received: list[Message] = []
    arrived = asyncio.Condition()

    async def follow() -> None:
        async for message in scene.bob.messages(room, follow=True):
            async with arrived:
                received.append(message)
                arrived.notify_all()

    async def until_received(count: int) -> None:
        async with arrived:
            await asyncio.wait_for(arrived.wait_for(lambda: len(received) >= count), TIMEOUT)

    async def send(client: ParleyClient, who: str, count: int) -> None:
        for i in range(count):
            sent.append(await client.send(room, f"{who} {len(sent)} {i}"))

    follower = asyncio.create_task(follow())
    reader = CliProcess(
        ["read", room, "--follow", "--json"],
        env=profile_env(scene.bob_home),
        stderr_path=tmp_path / "read.err",
    )
    try:
        # Before: both senders, each through its preferred replica; both followers on 1.
        await asyncio.gather(
            send(scene.alice, "alice", BEFORE // 2), send(scene.mona, "mona", BEFORE // 2)
        )
        await until_received(BEFORE)
        assert scene.bob.http.server == first.url

        # During: replica 1 dies between two of Alice's sends, with more to follow.
        senders = asyncio.gather(
            send(scene.alice, "alice", DURING // 2), send(scene.mona, "mona", DURING // 2)
        )
        await until_received(BEFORE + 2)
        first.kill()
        await asyncio.wait_for(senders, TIMEOUT)
        await until_received(len(sent))

        expected = sorted(sent, key=lambda r: r.seq)  # acknowledged: every send returned
        assert [(m.seq, m.message_id) for m in received] == [
            (r.seq, r.message_id) for r in expected
        ]
        assert len({m.message_id for m in received}) == BEFORE + DURING
        assert scene.bob.http.server == second.url
        assert scene.alice.http.server == second.url
        lines = [await reader.next_json(TIMEOUT) for _ in expected]
        assert [(line["seq"], line["message_id"]) for line in lines] == [
            (r.seq, r.message_id) for r in expected
        ]
    finally:
        follower.cancel()
        reader.stop()

    # The log both replicas wrote verifies (the `parley` command, too, starts on the
    # dead replica 1 and fails over).
    report = run_parley(["audit", "verify", room, "--json"], env=profile_env(scene.bob_home))
    assert (report.json()["log_id"], report.json()["size"]) == (room, expected[-1].seq)


async def test_config_servers_shows_and_sets_the_profiles_list(scene: Scene) -> None:
    env = profile_env(scene.bob_home)
    urls = [r.url for r in scene.replicas]

    shown = (await parley(["config", "servers", "--json"], env=env)).json()
    assert shown == {"servers": urls}

    reordered = (
        await parley(["config", "servers", urls[1] + "/", urls[0], "--json"], env=env)
    ).json()
    assert reordered == {"servers": [urls[1], urls[0]]}

    refused = await parley(["config", "servers", "ftp://elsewhere.example"], env=env)
    assert refused.returncode == 2  # a usage error
    assert "http:// or https://" in refused.stderr
    text = (await parley(["config", "servers"], env=env)).ok().stdout
    assert text.splitlines() == [f"1 {urls[1]} (preferred)", f"2 {urls[0]}"]
