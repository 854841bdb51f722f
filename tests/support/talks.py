"""The negotiation the SDK-level API tests start from: Mona mediates Alice (side a)
and Bob (side b), and in some modules Olga observes and caucus-a is open.

A module names its variant once and takes the fixtures for it:

    SCENE = talks_scene("receipt-talks")
    seed, talks_room = talks_fixtures(SCENE)

    @pytest.fixture
    async def talks(talks_room: str, open_profile: OpenProfile, tmp_path: Path) -> Talks:
        return open_talks(SCENE, talks_room, open_profile, tmp_path)

The room is built once per module and backend and copied for each test
(tests/support/scenes.py); each test opens the copied profiles again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import Action
from tests.conftest import OpenProfile, enroll_profile
from tests.support.scenes import Seed, scene_value

HOMES = {"mona": "scene-mona", "alice": "scene-alice", "bob": "scene-bob"}
"""Each person's profile directory, relative to the test's directory."""
OLGA_HOME = "scene-olga"


@dataclass(frozen=True, slots=True)
class TalksScene:
    """One variant of the talks: its scene and whether Olga observes."""

    seed: Seed
    observer: bool


@dataclass
class Talks:
    """The talks as one test sees them: the room and each person's client."""

    room_id: str
    mona: ParleyClient
    alice: ParleyClient
    bob: ParleyClient
    homes: dict[str, Path]
    """Each person's profile directory, to open a second client on it."""
    observer: ParleyClient | None = None

    @property
    def olga(self) -> ParleyClient:
        """Olga, the observer (only in scenes built with ``observer=True``)."""
        assert self.observer is not None, "this module's talks have no observer"
        return self.observer


def talks_scene(
    name: str, *, title: str = "Exchange talks", caucus_a: bool = False, observer: bool = False
) -> TalksScene:
    """The talks scene named `name`: a room titled `title` with Alice and Bob, Olga as
    an observer if `observer`, caucus-a opened if `caucus_a`."""

    async def build(app: FastAPI, root: Path) -> str:
        mona = await enroll_profile(app, root / HOMES["mona"], role=Role.MEDIATOR, name="Mona")
        members = [
            (await enroll_profile(app, root / HOMES["alice"], name="Alice"), Side.A),
            (await enroll_profile(app, root / HOMES["bob"], name="Bob"), Side.B),
        ]
        if observer:
            olga = await enroll_profile(app, root / OLGA_HOME, name="Olga")
            members.append((olga, Side.OBSERVER))
        try:
            room = await mona.create_room(title)
            for client, side in members:
                await mona.add_member(room.room_id, client.whoami()["account_id"], side)
            if caucus_a:
                await mona.moderate(room.room_id, Action.OPEN_CAUCUS, side=Side.A)
        finally:
            for client in (mona, *(client for client, _ in members)):
                await client.aclose()
        return room.room_id

    return TalksScene(Seed(name, build), observer)


def talks_fixtures(scene: TalksScene) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The module's `seed` and `talks_room` fixtures for `scene`."""

    @pytest.fixture
    def seed(request: pytest.FixtureRequest) -> Seed | None:
        return scene.seed if "talks_room" in request.fixturenames else None

    @pytest.fixture
    def talks_room(request: pytest.FixtureRequest, database_url: str) -> str:
        value: str = scene_value(request)
        return value

    return seed, talks_room


def open_talks(scene: TalksScene, room_id: str, open_profile: OpenProfile, root: Path) -> Talks:
    """Open every person's copied profile under `root`."""
    homes = {name: root / home for name, home in HOMES.items()}
    return Talks(
        room_id,
        mona=open_profile(homes["mona"]),
        alice=open_profile(homes["alice"]),
        bob=open_profile(homes["bob"]),
        homes=homes,
        observer=open_profile(root / OLGA_HOME) if scene.observer else None,
    )
