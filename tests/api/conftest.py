"""Fixtures for API tests: a test `Api` (app + HTTP client + world builders), on the
shared `app`, or on an app built with a manual clock or other settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.protocol.models import Role
from server.app import create_app
from server.config import Settings
from server.services.common import Clock, system_clock
from server.services.identity import IdentityService
from tests.api.factories import Actor, RoomSetup, Snapshot, create_room, enroll_actor, snapshot
from tests.conftest import BASE_URL


@dataclass(frozen=True, slots=True)
class Api:
    """One running app and an unauthenticated client on it."""

    app: FastAPI
    http: httpx.AsyncClient

    @property
    def identity(self) -> IdentityService:
        """The operator's path to enrollment tokens."""
        service: IdentityService = self.app.state.services.identity
        return service

    async def actor(self, role: Role = Role.PARTY, name: str = "Alice") -> Actor:
        """A freshly enrolled and logged-in account."""
        return await enroll_actor(self.http, self.identity, role=role, name=name)

    async def room(self) -> RoomSetup:
        """A room: mediator Mona, Alice on side a, Bob on side b (roster version 2)."""
        mediator = await self.actor(Role.MEDIATOR, "Mona")
        alice = await self.actor(Role.PARTY, "Alice")
        bob = await self.actor(Role.PARTY, "Bob")
        return await create_room(self.http, mediator, alice, bob)

    async def snapshot(self) -> Snapshot:
        """Every row of every table."""
        return await snapshot(self.app)


@pytest.fixture
def api(app: FastAPI, http: httpx.AsyncClient) -> Api:
    """The shared test app, as an `Api`."""
    return Api(app, http)


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(settings: Settings) -> AsyncIterator[MakeApi]:
    """Factory: an app on the test database with another clock or other settings.

    Use it instead of (never together with) the `api`/`app` fixtures.
    """
    async with AsyncExitStack() as stack:

        async def factory(*, clock: Clock = system_clock, **overrides: Any) -> Api:
            application = create_app(settings.model_copy(update=overrides), clock=clock)
            await stack.enter_async_context(application.router.lifespan_context(application))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url=BASE_URL)
            )
            return Api(application, client)

        yield factory
