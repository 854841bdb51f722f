"""Audit fixtures: a room with traffic and an auditor, a lying-server seam, and SQL that
goes behind the server's back.

`talks` is mediator Mona, Alice (side a) and Bob (side b) in one room with three
messages, and auditor Audrey granted the room's log; everyone reaches the app
in process. `Rewriter` is an httpx transport in front of the real app that
rewrites chosen answers (text or JSON), for a server that lies. `tamper`
drops the append-only triggers and changes rows directly, as an operator with
database access could.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from client_sdk.client import ParleyClient
from client_sdk.protocol.leaf import LogLeaf, parse_leaf
from client_sdk.protocol.merkle import leaf_hash
from client_sdk.protocol.models import Role, Side
from server.storage.database import Database
from server.storage.rooms import RoomRepository
from tests.conftest import OpenProfile, enroll_profile, reopen
from tests.support.scenes import Seed, scene_value

Edit = Callable[[bytes], bytes]
"""Rewrites one answer body."""

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For tests of the client's logic that the database backend cannot change."""


@dataclass(frozen=True, slots=True)
class Talks:
    """A room with traffic: three rosters (indexes 0-2) and three messages (3-5)."""

    room_id: str
    mediator: ParleyClient
    alice: ParleyClient
    bob: ParleyClient
    auditor: ParleyClient


def account_id(client: ParleyClient) -> str:
    """The client's account id."""
    return client.keystore.state.account_id


def database(app: FastAPI) -> Database:
    """The app's database."""
    found: Database = app.state.services.logs.database
    return found


async def grant_auditor(app: FastAPI, room_id: str, auditor: str, *, by: str) -> None:
    """Grant an auditor a room's log (the operator's path; there is no API for it yet)."""
    async with database(app).write() as conn:
        now = time.time_ns() // 1_000_000
        await RoomRepository(conn).grant_auditor(room_id, auditor, by=by, now=now)


TALKS_HOMES = ("scene-mona", "scene-alice", "scene-bob", "scene-audrey")
"""The scene's profiles (mediator, Alice, Bob, auditor), under a test's ``tmp_path``."""


async def _build_talks(app: FastAPI, root: Path) -> str:
    """Enroll everyone, open the room, send the three messages, grant the auditor."""
    people = [(Role.MEDIATOR, "Mona"), (Role.PARTY, "Alice"), (Role.PARTY, "Bob")]
    people.append((Role.AUDITOR, "Audrey"))
    clients = [
        await enroll_profile(app, root / home, role=role, name=name)
        for home, (role, name) in zip(TALKS_HOMES, people, strict=True)
    ]
    mediator, alice, bob, auditor = clients
    try:
        room = await mediator.create_room("Exchange talks")
        await mediator.add_member(room.room_id, account_id(alice), Side.A)
        await mediator.add_member(room.room_id, account_id(bob), Side.B)
        await alice.send(room.room_id, "We propose a one-for-one exchange.")
        await bob.send(room.room_id, "Two for one.")
        await mediator.send(room.room_id, "Let us meet in the middle.")
        await grant_auditor(app, room.room_id, account_id(auditor), by=account_id(mediator))
    finally:
        for client in clients:
            await client.aclose()
    return room.room_id


TALKS = Seed("audit-talks", _build_talks)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> Seed | None:
    """Tests of the talks start from its scene; the others from an empty database."""
    return TALKS if "talks_room" in request.fixturenames else None


@pytest.fixture
def talks_room(request: pytest.FixtureRequest, database_url: str) -> str:
    """The id of the talks' room in this test's copy of the scene."""
    room_id: str = scene_value(request)
    return room_id


@pytest.fixture
async def talks(talks_room: str, open_profile: OpenProfile, tmp_path: Path) -> Talks:
    """Mona's room with Alice and Bob, three messages, and auditor Audrey granted its log.

    Built once per module and backend (`TALKS`); each test gets its own copy of the
    database and profiles, opened again as a restarted device would.
    """
    mediator, alice, bob, auditor = (open_profile(tmp_path / home) for home in TALKS_HOMES)
    return Talks(talks_room, mediator, alice, bob, auditor)


class Rewriter(httpx.AsyncBaseTransport):
    """The real app behind a transport that rewrites chosen answers."""

    def __init__(self, app: FastAPI) -> None:
        self._upstream = httpx.ASGITransport(app=app)
        self._rules: list[tuple[str, Callable[[httpx.Request], bool], Edit]] = []

    def rewrite(
        self, path: str, edit: Edit, *, when: Callable[[httpx.Request], bool] = lambda _: True
    ) -> None:
        """Answer GETs of `path` (exact, query ignored) with `edit` applied to the body."""
        self._rules.append((path, when, edit))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Ask the app, then rewrite the answer if a rule matches."""
        response = await self._upstream.handle_async_request(request)
        rules = [
            edit
            for path, when, edit in self._rules
            if request.method == "GET" and request.url.path == path and when(request)
        ]
        if not rules:
            return response
        body = await response.aread()
        for edit in rules:
            body = edit(body)
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body)


def behind(client: ParleyClient, transport: httpx.AsyncBaseTransport) -> ParleyClient:
    """A new client on the same profile (read again from disk) that talks through `transport`."""
    return ParleyClient(reopen(client), transport=transport)


def newest_only(request: httpx.Request) -> bool:
    """A request for the newest checkpoint (no ``size``)."""
    return "size" not in request.url.params


async def drop_append_only(app: FastAPI, table: str) -> None:
    """Drop the trigger that refuses UPDATE on `table` (what an operator could do)."""
    db = database(app)
    statement = (
        f"DROP TRIGGER {table}_no_update"
        if db.is_sqlite
        else f"DROP TRIGGER {table}_append_only ON {table}"
    )
    async with db.write() as conn:
        await conn.execute(text(statement))


async def stored_leaf(app: FastAPI, log_id: str, index: int) -> LogLeaf:
    """The leaf stored at `index`."""
    async with database(app).read() as conn:
        row = (
            await conn.execute(
                text("SELECT leaf FROM log_entries WHERE log_id = :log AND idx = :idx"),
                {"log": log_id, "idx": index},
            )
        ).one()
    return parse_leaf(bytes(row[0]))


async def change_leaf(
    app: FastAPI, log_id: str, index: int, *, with_hash: bool, **changes: object
) -> None:
    """Rewrite the stored leaf at `index` (and its stored hash, if `with_hash`)."""
    leaf = (await stored_leaf(app, log_id, index)).model_copy(update=changes).to_bytes()
    await drop_append_only(app, "log_entries")
    assignments = "leaf = :leaf" + (", leaf_hash = :hash" if with_hash else "")
    async with database(app).write() as conn:
        await conn.execute(
            text(f"UPDATE log_entries SET {assignments} WHERE log_id = :log AND idx = :idx"),  # noqa: S608
            {"leaf": leaf, "hash": leaf_hash(leaf), "log": log_id, "idx": index},
        )
