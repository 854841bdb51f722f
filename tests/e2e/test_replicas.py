"""Several stateless replicas on one PostgreSQL database: an event accepted by one
replica reaches WebSocket subscribers of another (LISTEN/NOTIFY), in order,
exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.client import Message, ParleyClient
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.note import format_signer_key
from server.config import Settings
from server.log.appender import LogWriter
from server.log.signer import CheckpointSigner
from server.services.common import system_clock
from server.services.identity import IdentityService
from server.storage.database import create_database as open_database
from tests.conftest import PASSPHRASE, TEST_SCRYPT_N
from tests.support.databases import (
    create_database,
    drop_database,
    postgres_admin_url,
    with_database,
)
from tests.support.server import ServerProcess, server_env

pytestmark = pytest.mark.slow
LOG_KEY = format_signer_key("parley-test-log-key", Ed25519PrivateKey.generate())
TIMEOUT = 20.0


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL half skipped: set PARLEY_TEST_POSTGRES_URL to run it")
    name = await create_database(admin)
    try:
        yield with_database(admin, name, driver="postgresql+asyncpg")
    finally:
        await drop_database(admin, name)


async def _token(url: str, role: Role, name: str) -> str:
    database = open_database(url)
    try:
        settings = Settings(database_url=url, log_signing_key=LOG_KEY)
        log = LogWriter(CheckpointSigner.load(signer_key=LOG_KEY, data_dir=settings.data_dir))
        service = IdentityService(database, settings, system_clock, log)
        return (await service.create_enrollment(role=role, name=name)).token
    finally:
        await database.dispose()


async def test_events_sent_through_one_replica_stream_from_another(
    postgres_url: str, tmp_path: Path
) -> None:
    replicas = [
        ServerProcess(
            server_env(tmp_path / f"r{i}", postgres_url, PARLEY_LOG_SIGNING_KEY=LOG_KEY),
            tmp_path / f"r{i}.log",
        )
        for i in range(2)
    ]
    for replica in replicas:  # the first migrates, the second finds the schema in place
        replica.start()
    clients: list[ParleyClient] = []
    try:
        for role, name, replica in [
            (Role.MEDIATOR, "Mona", replicas[0]),
            (Role.PARTY, "Alice", replicas[0]),
            (Role.PARTY, "Bob", replicas[1]),
        ]:
            clients.append(
                await ParleyClient.enroll(
                    server=replica.url,
                    token=await _token(postgres_url, role, name),
                    home=tmp_path / name,
                    passphrase=PASSPHRASE,
                    scrypt_n=TEST_SCRYPT_N,
                )
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
        for replica in replicas:
            replica.stop()
