"""Replicas: several `parley serve` processes on one PostgreSQL database with one log
key, as a deployment behind a load balancer runs them (README, "PostgreSQL and
replicas"). Skipped, visibly, without ``PARLEY_TEST_POSTGRES_URL``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Role
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

LOG_KEY = format_signer_key("parley-test-log-key", Ed25519PrivateKey.generate())
"""The log key every replica signs checkpoints with (their logs are one)."""


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database (its asyncpg URL), dropped afterwards; skips the test
    without ``PARLEY_TEST_POSTGRES_URL``."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL half skipped: set PARLEY_TEST_POSTGRES_URL to run it")
    name = await create_database(admin)
    try:
        yield with_database(admin, name, driver="postgresql+asyncpg")
    finally:
        await drop_database(admin, name)


@contextmanager
def running_replicas(database_url: str, root: Path, count: int) -> Iterator[list[ServerProcess]]:
    """`count` started replicas on `database_url` sharing `LOG_KEY` (the first migrates
    the schema, the others find it in place), stopped when the block ends."""
    # One data directory for all (documents' blobs), as the README says: PostgreSQL
    # replicas take no lock on it. Every other one names the database with a plain
    # postgresql:// URL, which means the same as postgresql+asyncpg://.
    plain = database_url.replace("postgresql+asyncpg://", "postgresql://")
    replicas = [
        ServerProcess(
            server_env(
                root / "data", plain if i % 2 else database_url, PARLEY_LOG_SIGNING_KEY=LOG_KEY
            ),
            root / f"r{i}.log",
        )
        for i in range(count)
    ]
    try:
        for replica in replicas:
            replica.start()
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


async def enrollment_token(database_url: str, role: Role, name: str) -> str:
    """A one-time enrollment token for a new account, made directly in the database."""
    database = open_database(database_url)
    try:
        settings = Settings(database_url=database_url, log_signing_key=LOG_KEY)
        log = LogWriter(CheckpointSigner.load(signer_key=LOG_KEY, data_dir=settings.data_dir))
        service = IdentityService(database, settings, system_clock, log)
        return (await service.create_enrollment(role=role, name=name)).token
    finally:
        await database.dispose()


async def enroll(
    database_url: str, role: Role, name: str, *, server: str | list[str], home: Path
) -> ParleyClient:
    """A new account `name` enrolled through `server` (one URL or several), its profile
    in `home`."""
    return await ParleyClient.enroll(
        server=server,
        token=await enrollment_token(database_url, role, name),
        home=home,
        passphrase=PASSPHRASE,
        scrypt_n=TEST_SCRYPT_N,
    )
