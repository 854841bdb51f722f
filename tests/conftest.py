"""Shared fixtures.

Database-backed tests take the `database_url` fixture, which runs each test on
a fresh SQLite file and, when ``PARLEY_TEST_POSTGRES_URL`` is set, again on a
fresh PostgreSQL database (otherwise the PostgreSQL run is skipped, visibly).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.client import ParleyClient
from client_sdk.keystore import Keystore
from client_sdk.protocol.models import Role
from server.app import create_app
from server.config import Settings
from server.services.identity import IdentityService
from server.storage.database import create_database as create_engine_database
from server.storage.migrate import upgrade_to_head
from tests.support.databases import (
    create_database,
    drop_database,
    postgres_admin_url,
    with_database,
)

TEST_SCRYPT_N = 2**10
PASSPHRASE = "correct horse battery staple"
BASE_URL = "http://parley.test"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


_template: dict[str, str] = {}


async def _postgres_template(admin_url: str) -> str:
    """A database migrated to head, cloned for each test (made once per session)."""
    if "name" not in _template:
        name = await create_database(admin_url)
        database = create_engine_database(
            with_database(admin_url, name, driver="postgresql+asyncpg")
        )
        try:
            await upgrade_to_head(database)
        finally:
            await database.dispose()
        _template["name"] = name
    return _template["name"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    admin = postgres_admin_url()
    if admin and "name" in _template:
        import asyncio

        asyncio.run(drop_database(admin, _template.pop("name")))


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL half skipped: set PARLEY_TEST_POSTGRES_URL to run it")
    template = await _postgres_template(admin)
    name = await create_database(admin, template=template)
    try:
        yield with_database(admin, name, driver="postgresql+asyncpg")
    finally:
        await drop_database(admin, name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Server settings on the test database, with test-sized limits."""
    return Settings(
        data_dir=tmp_path / "server",
        database_url=database_url,
        max_message_bytes=256 * 1024,
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running (database migrated)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated HTTP client talking to the app in-process."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        yield client


@pytest.fixture
def identity(app: FastAPI) -> IdentityService:
    """The app's identity service (the operator's path for enrollment tokens)."""
    service: IdentityService = app.state.services.identity
    return service


EnrollFactory = Callable[..., Awaitable[ParleyClient]]


@pytest.fixture
async def enroll(
    app: FastAPI, identity: IdentityService, tmp_path: Path
) -> AsyncIterator[EnrollFactory]:
    """Factory: enroll an account with its own profile; returns its SDK client."""
    clients: list[ParleyClient] = []

    async def factory(*, role: Role = Role.PARTY, name: str = "Alice") -> ParleyClient:
        ticket = await identity.create_enrollment(role=role, name=name)
        client = await ParleyClient.enroll(
            server=BASE_URL,
            token=ticket.token,
            home=tmp_path / f"profile-{len(clients)}",
            passphrase=PASSPHRASE,
            transport=httpx.ASGITransport(app=app),
            scrypt_n=TEST_SCRYPT_N,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


def reopen(client: ParleyClient) -> Keystore:
    """Open a client's keystore file again, as a fresh process would."""
    return Keystore.open(client.keystore.home, PASSPHRASE)
