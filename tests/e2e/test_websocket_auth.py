"""Authentication on the event stream (docs/design.md §5): a bearer header or a first
frame, never a token in the URL; failures close with the mapped codes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import open_negotiation
from tests.e2e.harness import Cast, Deployment

pytestmark = pytest.mark.slow

TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Access:
    """A room, and bearer tokens of two members and of an outsider."""

    room_id: str
    alice: str
    bob: str
    outsider: str


@pytest.fixture(scope="module")
def access(shared_deployment: Deployment, cast: Cast) -> Access:
    """One room for the module: these tests only read its stream."""
    shared_deployment.ensure_running()

    async def set_up() -> Access:
        clients = [p.client() for p in (cast.mediator, cast.alice, cast.bob, cast.outsider)]
        try:
            mediator, alice, bob, outsider = clients
            room_id = await open_negotiation(
                "Stream access", mediator, alice=cast.alice, bob=cast.bob
            )
            return Access(room_id, await alice.token(), await bob.token(), await outsider.token())
        finally:
            for client in clients:
                await client.aclose()

    return asyncio.run(set_up())


def _stream_url(deployment: Deployment, access: Access, query: str = "after=0") -> str:
    host = deployment.url.removeprefix("http://")
    return f"ws://{host}/v1/rooms/{access.room_id}/stream?{query}"


async def _frame(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return frame


async def _first_events(ws: ClientConnection) -> list[dict[str, Any]]:
    """The events of the first batch after "ready"."""
    assert await _frame(ws) == {"type": "ready"}
    batch = await _frame(ws)
    assert batch["type"] == "batch"
    events: list[dict[str, Any]] = batch["events"]
    return events


async def _close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; fail if it sends anything first."""
    try:
        frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    pytest.fail(f"expected the server to close the stream, got {frame!r}")


async def test_a_first_frame_token_opens_the_stream(deployment: Deployment, access: Access) -> None:
    async with connect(_stream_url(deployment, access)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": access.alice}))

        events = await _first_events(ws)
        assert [(e["seq"], e["kind"]) for e in events] == [
            (1, "roster"),
            (2, "roster"),
            (3, "roster"),
        ]


async def test_a_bearer_header_opens_the_stream(deployment: Deployment, access: Access) -> None:
    async with connect(
        _stream_url(deployment, access, "after=2"),
        additional_headers={"Authorization": f"Bearer {access.bob}"},
    ) as ws:
        assert [e["seq"] for e in await _first_events(ws)] == [3]


@pytest.mark.parametrize(
    "first_frame",
    [
        pytest.param({"type": "auth"}, id="no-token"),
        pytest.param({"type": "auth", "token": ""}, id="empty-token"),
        pytest.param({"type": "auth", "token": "garbage"}, id="garbage-token"),
        pytest.param({"type": "subscribe"}, id="not-an-auth-frame"),
    ],
)
async def test_a_first_frame_without_a_valid_token_closes_with_4401(
    deployment: Deployment, access: Access, first_frame: dict[str, str]
) -> None:
    async with connect(_stream_url(deployment, access)) as ws:
        await ws.send(json.dumps(first_frame))

        assert await _close_code(ws) == 4401


async def test_a_garbage_bearer_header_closes_with_4401(
    deployment: Deployment, access: Access
) -> None:
    async with connect(
        _stream_url(deployment, access),
        additional_headers={"Authorization": "Bearer not-a-token"},
    ) as ws:
        assert await _close_code(ws) == 4401


async def test_a_non_member_closes_with_4404(deployment: Deployment, access: Access) -> None:
    async with connect(_stream_url(deployment, access)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": access.outsider}))

        assert await _close_code(ws) == 4404


@pytest.mark.parametrize("parameter", ["token", "access_token", "auth"])
async def test_a_token_in_the_url_is_not_accepted(
    deployment: Deployment, access: Access, parameter: str
) -> None:
    url = _stream_url(deployment, access, f"after=0&{parameter}={access.alice}")
    async with connect(url) as ws:
        # Had the URL token counted, "ready" would come first; instead the server
        # still wants an authentication frame, and this is not one.
        await ws.send(json.dumps({"type": "ping"}))

        assert await _close_code(ws) == 4401
