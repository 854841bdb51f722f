"""The adversarial tests' scene: the talks, with Alice's SDK behind a hostile server.

The hostile server itself (`MaliciousServer`, `Operator`) is `tests.support.hostile`;
every attack, and what a malicious operator can forge, is `tests.support.attacks`.

Fixture `talks` is the usual scene: mediator Mona, Alice on side a and Bob on
side b in one room. Alice is the victim (her SDK reaches the server only
through `talks.server`); Mona and Bob talk to the app directly. Fixture
`alice_env` points Alice's profile at a TCP proxy in front of that seam, for her
`parley` commands.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from client_sdk.client import ParleyClient
from client_sdk.keystore import KeystoreState
from client_sdk.protocol.models import Role, Side
from server.services.identity import IdentityService
from tests.conftest import BASE_URL, PASSPHRASE, TEST_SCRYPT_N, OpenProfile, enroll_profile
from tests.support.attacks import Talks, account_id
from tests.support.cli import cli_env
from tests.support.hostile import Exchange, HttpProxy, MaliciousServer, Operator
from tests.support.scenes import Seed, scene_value

# --- the scene ----------------------------------------------------------------------


EnrollThrough = Callable[..., Awaitable[ParleyClient]]
BehindSeam = Callable[[ParleyClient], tuple[ParleyClient, MaliciousServer]]


@pytest.fixture
async def enroll_through(
    app: FastAPI, identity: IdentityService, tmp_path: Path
) -> AsyncIterator[EnrollThrough]:
    """Factory: enroll an account over `transport` (default: straight to the app)."""
    clients: list[ParleyClient] = []

    async def factory(
        *,
        name: str,
        role: Role = Role.PARTY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> ParleyClient:
        ticket = await identity.create_enrollment(role=role, name=name)
        client = await ParleyClient.enroll(
            server=BASE_URL,
            token=ticket.token,
            home=tmp_path / f"adversarial-{len(clients)}",
            passphrase=PASSPHRASE,
            transport=transport or httpx.ASGITransport(app=app),
            scrypt_n=TEST_SCRYPT_N,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
async def behind_seam(app: FastAPI) -> AsyncIterator[BehindSeam]:
    """Factory: the same profile (keystore) as `client`, reconnected through a new seam."""
    clients: list[ParleyClient] = []

    def factory(client: ParleyClient) -> tuple[ParleyClient, MaliciousServer]:
        server = MaliciousServer(app)
        victim = ParleyClient(client.keystore, transport=server)
        clients.append(victim)
        return victim, server

    yield factory
    for client in clients:
        await client.aclose()


async def open_room(
    mediator: ParleyClient,
    *,
    a: list[ParleyClient],
    b: list[ParleyClient],
    require_verified: bool = False,
) -> str:
    """A room the mediator creates, then adds `a` on side a and `b` on side b (in order)."""
    room = await mediator.create_room("Exchange talks", require_verified=require_verified)
    for side, clients in ((Side.A, a), (Side.B, b)):
        for client in clients:
            await mediator.add_member(room.room_id, account_id(client), side)
    return room.room_id


@pytest.fixture
async def alice_env(talks: Talks) -> AsyncIterator[dict[str, str]]:
    """The environment of Alice's `parley` commands, her profile's server the proxy."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    proxy = uvicorn.Server(
        uvicorn.Config(HttpProxy(talks.server), lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(proxy.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def behind_proxy(state: KeystoreState) -> KeystoreState:
        return state.model_copy(update={"servers": (url,)})

    talks.alice.keystore.update(behind_proxy)
    try:
        yield cli_env(PARLEY_HOME=str(talks.alice.keystore.home), PARLEY_PASSPHRASE=PASSPHRASE)
    finally:
        proxy.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


@dataclass(frozen=True, slots=True)
class _Scene:
    room_id: str
    exchanges: list[Exchange]
    """What Alice's SDK sent through the seam while the scene was built (her enrollment)."""


_HOMES = ("scene-mona", "scene-alice", "scene-bob")


async def _build_talks(app: FastAPI, root: Path) -> _Scene:
    """Enroll Mona, Alice (through a seam) and Bob, and open the room."""
    server = MaliciousServer(app)
    mona, alice, bob = _HOMES
    mediator = await enroll_profile(app, root / mona, role=Role.MEDIATOR, name="Mona")
    victim = await enroll_profile(app, root / alice, name="Alice", transport=server)
    other = await enroll_profile(app, root / bob, name="Bob")
    try:
        room_id = await open_room(mediator, a=[victim], b=[other])
    finally:
        for client in (mediator, victim, other):
            await client.aclose()
    return _Scene(room_id, list(server.exchanges))


TALKS = Seed("adversarial-talks", _build_talks)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> Seed | None:
    """Tests of the talks start from its scene; the others from an empty database."""
    return TALKS if "talks_scene" in request.fixturenames else None


@pytest.fixture
def talks_scene(request: pytest.FixtureRequest, database_url: str) -> _Scene:
    """The talks' room and Alice's recorded enrollment, in this test's copy of the scene."""
    scene: _Scene = scene_value(request)
    return scene


@pytest.fixture
async def talks(
    app: FastAPI, talks_scene: _Scene, open_profile: OpenProfile, tmp_path: Path
) -> Talks:
    """Roster v1 Mona, v2 + Alice, v3 + Bob (events 1-3); Alice behind the seam.

    Built once per module and backend (`TALKS`); each test gets its own copy of the
    database and profiles, opened again as a restarted device would, and a new seam
    that has already recorded Alice's enrollment.
    """
    server = MaliciousServer(app)
    server.exchanges.extend(talks_scene.exchanges)
    mona, alice, bob = _HOMES
    return Talks(
        server=server,
        operator=Operator(app),
        mediator=open_profile(tmp_path / mona),
        alice=open_profile(tmp_path / alice, transport=server),
        bob=open_profile(tmp_path / bob),
        room_id=talks_scene.room_id,
    )
