"""Several stateless replicas on one PostgreSQL database: an event accepted by one
replica reaches WebSocket subscribers of another (LISTEN/NOTIFY), in order,
exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from client_sdk.client import Message, ParleyClient
from client_sdk.protocol.models import Role, Side
from tests.support.replicas import enroll, postgres_database, running_replicas

pytestmark = pytest.mark.slow
TIMEOUT = 20.0


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


async def test_events_sent_through_one_replica_stream_from_another(
    postgres_url: str, tmp_path: Path
) -> None:
    clients: list[ParleyClient] = []
    with running_replicas(postgres_url, tmp_path, 2) as replicas:
        try:
            for role, name, replica in [
                (Role.MEDIATOR, "Mona", replicas[0]),
                (Role.PARTY, "Alice", replicas[0]),
                (Role.PARTY, "Bob", replicas[1]),
            ]:
                clients.append(
                    await enroll(postgres_url, role, name, server=replica.url, home=tmp_path / name)
                )
            mediator, alice, bob = clients
            room = await mediator.create_room("Across replicas")
            await mediator.add_member(room.room_id, alice.whoami()["account_id"], Side.A)
            await mediator.add_member(room.room_id, bob.whoami()["account_id"], Side.B)

            received: list[Message] = []
            done = asyncio.Event()

            async def follow() -> None:
                async for message in bob.messages(room.room_id, follow=True):
                    received.append(message)
                    if len(received) == 5:
                        done.set()
                        return

            follower = asyncio.create_task(follow())
            for i in range(5):
                await alice.send(room.room_id, f"offer {i}")
            await asyncio.wait_for(done.wait(), TIMEOUT)
            await follower

            assert [m.text for m in received] == [f"offer {i}" for i in range(5)]
            assert [m.seq for m in received] == sorted({m.seq for m in received})
        finally:
            for client in clients:
                await client.aclose()
