"""Talking to the event stream by hand, frame by frame (the SDK would refuse to send
what these tests send)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from client_sdk.client import ParleyClient
from tests.e2e.conftest import open_negotiation
from tests.e2e.harness import Cast, Deployment

TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Access:
    """A room, and bearer tokens of two members and of an outsider."""

    room_id: str
    alice: str
    bob: str
    outsider: str


async def open_access(cast: Cast) -> Access:
    """A fresh room of the cast's, and fresh tokens of Alice, Bob and the outsider."""
    clients: list[ParleyClient] = [
        p.client() for p in (cast.mediator, cast.alice, cast.bob, cast.outsider)
    ]
    try:
        mediator, alice, bob, outsider = clients
        room_id = await open_negotiation("Stream access", mediator, alice=cast.alice, bob=cast.bob)
        return Access(room_id, await alice.token(), await bob.token(), await outsider.token())
    finally:
        for client in clients:
            await client.aclose()


def stream_url(deployment: Deployment, room_id: str, query: str = "after=0") -> str:
    """The WebSocket URL of `room_id`'s stream on `deployment`."""
    host = deployment.url.removeprefix("http://")
    return f"ws://{host}/v1/rooms/{room_id}/stream?{query}"


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    """The next frame, as JSON."""
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return frame


async def first_events(ws: ClientConnection) -> list[dict[str, Any]]:
    """The events of the first batch after "ready"."""
    assert await next_frame(ws) == {"type": "ready"}
    batch = await next_frame(ws)
    assert batch["type"] == "batch"
    events: list[dict[str, Any]] = batch["events"]
    return events


async def close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; fail if it sends anything first."""
    try:
        frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    pytest.fail(f"expected the server to close the stream, got {frame!r}")
