"""End-to-end fixtures: real `parley serve` processes and real `parley` commands.

One server per backend serves every end-to-end test of the session
(`shared_deployment`; under pytest-xdist, of the worker, which may run other
packages' files between two of these), and the same four people, enrolled once
with the `parley` command, are reused by every test (`cast`); each test opens
its own room, so tests do not see each other's messages. Tests that crash the
server restart it before they end, and `deployment` restarts it anyway if an
earlier test left it dead. SQLite runs on a file of its own; PostgreSQL on a
database created for the session and dropped after it, and is skipped, visibly,
without ``PARLEY_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Role, Side
from tests.e2e.harness import Cast, Deployment, Person, cheapen_profile, profile_env
from tests.support.cli import run_parallel
from tests.support.databases import (
    create_database,
    drop_database,
    postgres_admin_url,
    with_database,
)
from tests.support.server import ServerProcess, running_server, server_env

BACKENDS = [
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
POSTGRES_SKIP = "PostgreSQL half skipped: set PARLEY_TEST_POSTGRES_URL to run it"


def _serve(root: Path, backend: str, database_url: str, dsn: str | None) -> Iterator[Deployment]:
    data_dir = root / "server"
    data_dir.mkdir()
    server = ServerProcess(server_env(data_dir, database_url), root / "server.log")
    server.start()
    try:
        yield Deployment(backend, database_url, data_dir, server, postgres_dsn=dsn)
    finally:
        server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def shared_deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The session's server on one backend (started once, possibly restarted by tests)."""
    backend: str = request.param
    if backend == "sqlite":
        root = tmp_path_factory.mktemp("e2e-sqlite")
        url = f"sqlite+aiosqlite:///{root / 'server' / 'parley.db'}"
        yield from _serve(root, backend, url, None)
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(POSTGRES_SKIP)
    name = asyncio.run(create_database(admin))
    try:
        yield from _serve(
            tmp_path_factory.mktemp("e2e-postgres"),
            backend,
            with_database(admin, name, driver="postgresql+asyncpg"),
            with_database(admin, name),
        )
    finally:
        asyncio.run(drop_database(admin, name))


@pytest.fixture
def deployment(shared_deployment: Deployment) -> Deployment:
    """The session's server, running."""
    shared_deployment.ensure_running()
    return shared_deployment


_TOKEN = re.compile(r"\S+\n")


@pytest.fixture(scope="session")
def cast(shared_deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Cast:
    """Four people enrolled the operator's way: `parley admin enroll` on the server's
    database, then `parley enroll` in each person's own profile."""
    shared_deployment.ensure_running()
    people = [
        (Role.MEDIATOR, "Mona Mediator"),
        (Role.PARTY, "Alice"),
        (Role.PARTY, "Bob"),
        (Role.PARTY, "Olga Outsider"),
    ]
    admin = run_parallel(
        [
            (["admin", "enroll", "--role", role.value, "--name", name], shared_deployment.env)
            for role, name in people
        ]
    )
    root = tmp_path_factory.mktemp(f"profiles-{shared_deployment.backend}")
    homes = [root / name.split()[0].lower() for _, name in people]
    for issued in admin:
        assert _TOKEN.fullmatch(issued.ok().stdout), issued.describe()
    tokens = [issued.stdout.strip() for issued in admin]
    enrolled = run_parallel(
        [
            (["enroll", "--server", shared_deployment.url, "--token", token, "--json"], env)
            for token, env in zip(tokens, map(profile_env, homes), strict=True)
        ]
    )
    for home in homes:
        cheapen_profile(home)
    final = [
        Person(
            name,
            role,
            home,
            account_id=str(result.json()["account_id"]),
            token=token,
            admin_stdout=issued.stdout,
        )
        for (role, name), home, token, issued, result in zip(
            people, homes, tokens, admin, enrolled, strict=True
        )
    ]
    return Cast(*final)


OpenClient = Callable[[Person], ParleyClient]


@pytest.fixture
async def open_client() -> AsyncIterator[OpenClient]:
    """Factory: an SDK client on a person's profile, closed when the test ends."""
    clients: list[ParleyClient] = []

    def factory(person: Person) -> ParleyClient:
        client = person.client()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@dataclass(frozen=True, slots=True)
class Negotiation:
    """A fresh room with the cast's mediator, Alice on side a and Bob on side b."""

    room_id: str
    mediator: ParleyClient
    alice: ParleyClient
    bob: ParleyClient


async def open_negotiation(
    title: str, mediator: ParleyClient, *, alice: Person, bob: Person
) -> str:
    """A new room of `mediator`'s with Alice on side a and Bob on side b; its id."""
    room = await mediator.create_room(title[:200])
    await mediator.add_member(room.room_id, alice.account_id, Side.A)
    await mediator.add_member(room.room_id, bob.account_id, Side.B)
    return room.room_id


@pytest.fixture
async def negotiation(
    deployment: Deployment, cast: Cast, open_client: OpenClient, request: pytest.FixtureRequest
) -> Negotiation:
    """A room of its own for this test, set up through the SDK against the real server."""
    mediator, alice, bob = (open_client(p) for p in (cast.mediator, cast.alice, cast.bob))
    room_id = await open_negotiation(request.node.name, mediator, alice=cast.alice, bob=cast.bob)
    return Negotiation(room_id, mediator, alice, bob)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A `parley serve` of the test's own, on SQLite in ``tmp_path / "data"`` (for tests
    that stop, kill or restore it)."""
    with running_server(server_env(tmp_path / "data", None), tmp_path / "server.log") as server:
        yield server
