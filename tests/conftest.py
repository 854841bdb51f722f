"""Shared fixtures.

Database-backed tests take the `database_url` fixture, which runs each test on
a fresh SQLite file and, when ``PARLEY_TEST_POSTGRES_URL`` is set, again on a
fresh PostgreSQL database (otherwise the PostgreSQL run is skipped, visibly).

Test files live in RAM (``/dev/shm``) when the machine has it, unless
``--basetemp``, ``TMPDIR`` or ``PYTEST_DEBUG_TEMPROOT`` says where else.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from client_sdk.client import ParleyClient
from client_sdk.keystore import Keystore
from client_sdk.protocol.models import Role
from server.app import create_app
from server.config import Settings
from server.services.identity import IdentityService
from server.storage.database import create_database as create_engine_database
from server.storage.ddl import append_only_statements
from server.storage.migrate import upgrade_to_head
from server.storage.tables import APPEND_ONLY_TABLES, metadata
from tests.support.databases import (
    create_database,
    drop_database,
    postgres_admin_url,
    with_database,
)
from tests.support.scenes import SCENE_VALUE, Scene, Seed, dump_postgres, restore_postgres

TEST_SCRYPT_N = 2**10
PASSPHRASE = "correct horse battery staple"
BASE_URL = "http://parley.test"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


RAM_TEMP_ROOT = Path("/dev/shm")  # noqa: S108  # pytest makes its private directory under it


def pytest_configure(config: pytest.Config) -> None:
    """Put the session's temporary directory on a RAM file system if there is one.

    The server commits every SQLite write with an fsync (``synchronous=FULL``),
    and the SDK fsyncs each keystore save; on a disk shared with other work
    those waits were most of the suite's wall time. A tmpfs makes them free,
    and what the tests observe is the same.
    """
    chosen = (
        config.option.basetemp is not None
        or "TMPDIR" in os.environ
        or "PYTEST_DEBUG_TEMPROOT" in os.environ
    )
    if not chosen and RAM_TEMP_ROOT.is_dir() and os.access(RAM_TEMP_ROOT, os.W_OK):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(RAM_TEMP_ROOT)


_shared: dict[str, str] = {}


async def _migrated(url: str) -> None:
    database = create_engine_database(url)
    try:
        await upgrade_to_head(database)
    finally:
        await database.dispose()


async def _sqlite_template(directory: Path) -> Path:
    """A SQLite file migrated to head (made once per session), copied for each test."""
    if "sqlite" not in _shared:
        path = directory / "template.db"
        await _migrated(f"sqlite+aiosqlite:///{path}")
        _shared["sqlite"] = str(path)
    return Path(_shared["sqlite"])


async def _postgres_session_database(admin_url: str) -> str:
    """One PostgreSQL database migrated to head for the whole session."""
    if "postgres" not in _shared:
        name = await create_database(admin_url)
        await _migrated(with_database(admin_url, name, driver="postgresql+asyncpg"))
        _shared["postgres"] = name
    return _shared["postgres"]


async def _reset_postgres(url: str) -> None:
    """Empty every table, restart its sequences, and restore any append-only trigger a
    test dropped, in one transaction.

    DELETE with triggers off (replica role) rather than TRUNCATE: for tables of a
    few rows it is several times cheaper, as TRUNCATE makes new files for each table.
    """
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            triggers = {
                row["tgname"]
                for row in await conn.fetch("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
            }
            sequences = [
                row["name"]
                for row in await conn.fetch(
                    "SELECT quote_ident(sequence_schema) || '.' || quote_ident(sequence_name)"
                    " AS name FROM information_schema.sequences"
                )
            ]
            statements = ["SET LOCAL session_replication_role = replica"]
            # Table names come from our own metadata, not from input.
            statements += [f"DELETE FROM {t.name}" for t in reversed(metadata.sorted_tables)]  # noqa: S608
            statements += [f"ALTER SEQUENCE {name} RESTART" for name in sequences]
            for table in APPEND_ONLY_TABLES:
                if {f"{table}_append_only", f"{table}_no_truncate"} <= triggers:
                    continue
                statements.append(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
                statements.append(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
                statements += append_only_statements("postgresql", table)
            await conn.execute(";\n".join(statements))
    finally:
        await conn.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    admin = postgres_admin_url()
    if admin and "postgres" in _shared:
        asyncio.run(drop_database(admin, _shared.pop("postgres")))


def settings_for(database_url: str, root: Path) -> Settings:
    """Server settings on `database_url`, with test-sized limits and data under `root`."""
    return Settings(
        data_dir=root / "server",
        database_url=database_url,
        max_message_bytes=256 * 1024,
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
        public_rate_limit_per_second=1000.0,
        public_rate_limit_burst=1000,
    )


_scenes: dict[tuple[str, str, str], Scene] = {}


async def _scene(
    seed: Seed, backend: str, module: str, factory: pytest.TempPathFactory, admin: str | None
) -> Scene:
    """The module's scene on `backend`, built on first use (the previous module's are
    forgotten). On PostgreSQL it is built on the session database, then read out."""
    key = (seed.name, module, backend)
    if key not in _scenes:
        for stale in [k for k in _scenes if k[1] != module]:
            del _scenes[stale]
        root = factory.mktemp(f"scene-{seed.name}-{backend}")
        plain: str | None = None
        if admin is None:
            shutil.copyfile(await _sqlite_template(factory.getbasetemp()), root / "parley.db")
            url = f"sqlite+aiosqlite:///{root / 'parley.db'}"
        else:
            name = await _postgres_session_database(admin)
            plain = with_database(admin, name)
            await _reset_postgres(plain)
            url = with_database(admin, name, driver="postgresql+asyncpg")
        application = create_app(settings_for(url, root))
        async with application.router.lifespan_context(application):
            value = await seed.build(application, root)
        rows = None if plain is None else await dump_postgres(plain)
        _scenes[key] = Scene(root, value, rows)
    return _scenes[key]


@pytest.fixture
def seed() -> Seed | None:
    """The scene a test's database starts from: none (an empty schema), unless a
    conftest overrides this for the tests that use one of its scenes."""
    return None


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest,
    seed: Seed | None,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    """A migrated database on each backend, empty or holding the test's scene (whose
    files are copied into ``tmp_path``): a fresh SQLite file, or the session's
    PostgreSQL database emptied (and refilled) for this test."""
    module = request.node.nodeid.split("::")[0]
    if request.param == "sqlite":
        path = tmp_path / "parley.db"
        if seed is None:
            shutil.copyfile(await _sqlite_template(tmp_path_factory.getbasetemp()), path)
        else:
            scene = await _scene(seed, "sqlite", module, tmp_path_factory, None)
            scene.copy_files(tmp_path)
            request.node.stash[SCENE_VALUE] = scene.value
        yield f"sqlite+aiosqlite:///{path}"
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL half skipped: set PARLEY_TEST_POSTGRES_URL to run it")
    name = await _postgres_session_database(admin)
    plain = with_database(admin, name)
    if seed is None:
        await _reset_postgres(plain)
    else:
        scene = await _scene(seed, "postgres", module, tmp_path_factory, admin)
        assert scene.rows is not None
        await _reset_postgres(plain)
        await restore_postgres(plain, scene.rows)
        scene.copy_files(tmp_path)
        request.node.stash[SCENE_VALUE] = scene.value
    yield with_database(admin, name, driver="postgresql+asyncpg")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Server settings on the test database, with test-sized limits."""
    return settings_for(database_url, tmp_path)


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


@dataclass(slots=True)
class LiveServer:
    """The app served over TCP from this event loop."""

    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        self.server.should_exit = True
        await asyncio.wait_for(asyncio.shield(self.task), timeout=10)


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[LiveServer]:
    """The test app on a free port; connections queue on the bound socket from the start."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    running = LiveServer(f"http://127.0.0.1:{sock.getsockname()[1]}", server, task)
    try:
        yield running
    finally:
        await running.stop()
        sock.close()


@pytest.fixture
def identity(app: FastAPI) -> IdentityService:
    """The app's identity service (the operator's path for enrollment tokens)."""
    service: IdentityService = app.state.services.identity
    return service


async def enroll_profile(
    app: FastAPI,
    home: Path,
    *,
    role: Role = Role.PARTY,
    name: str = "Alice",
    transport: httpx.AsyncBaseTransport | None = None,
) -> ParleyClient:
    """Enroll an account the operator's way (a token from the identity service) into a
    new profile at `home`; its SDK client talks over `transport` (default: to the app)."""
    identity: IdentityService = app.state.services.identity
    ticket = await identity.create_enrollment(role=role, name=name)
    return await ParleyClient.enroll(
        server=BASE_URL,
        token=ticket.token,
        home=home,
        passphrase=PASSPHRASE,
        transport=transport or httpx.ASGITransport(app=app),
        scrypt_n=TEST_SCRYPT_N,
    )


EnrollFactory = Callable[..., Awaitable[ParleyClient]]


@pytest.fixture
async def enroll(app: FastAPI, tmp_path: Path) -> AsyncIterator[EnrollFactory]:
    """Factory: enroll an account with its own profile; returns its SDK client."""
    clients: list[ParleyClient] = []

    async def factory(*, role: Role = Role.PARTY, name: str = "Alice") -> ParleyClient:
        client = await enroll_profile(
            app, tmp_path / f"profile-{len(clients)}", role=role, name=name
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


OpenProfile = Callable[..., ParleyClient]


@pytest.fixture
async def open_profile(app: FastAPI) -> AsyncIterator[OpenProfile]:
    """Factory: an SDK client on an existing profile (a scene's), talking over
    `transport` (default: to the app); closed when the test ends."""
    clients: list[ParleyClient] = []

    def factory(home: Path, *, transport: httpx.AsyncBaseTransport | None = None) -> ParleyClient:
        client = ParleyClient.open(
            home, PASSPHRASE, transport=transport or httpx.ASGITransport(app=app)
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


def reopen(client: ParleyClient) -> Keystore:
    """Open a client's keystore file again, as a fresh process would."""
    return Keystore.open(client.keystore.home, PASSPHRASE)
