"""Authentication on the event stream (docs/design.md §5): a bearer header or a first
frame, never a token in the URL; failures close with the mapped codes."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from tests.e2e.harness import Cast, Deployment
from tests.e2e.streams import Access, close_code, first_events, open_access, stream_url

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def access(shared_deployment: Deployment, cast: Cast) -> Access:
    """One room for the module: these tests only read its stream."""
    shared_deployment.ensure_running()
    return asyncio.run(open_access(cast))


def _stream_url(deployment: Deployment, access: Access, query: str = "after=0") -> str:
    return stream_url(deployment, access.room_id, query)


async def test_a_first_frame_token_opens_the_stream(deployment: Deployment, access: Access) -> None:
    async with connect(_stream_url(deployment, access)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": access.alice}))

        events = await first_events(ws)
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
        assert [e["seq"] for e in await first_events(ws)] == [3]


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

        assert await close_code(ws) == 4401


async def test_a_garbage_bearer_header_closes_with_4401(
    deployment: Deployment, access: Access
) -> None:
    async with connect(
        _stream_url(deployment, access),
        additional_headers={"Authorization": "Bearer not-a-token"},
    ) as ws:
        assert await close_code(ws) == 4401


async def test_a_non_member_closes_with_4404(deployment: Deployment, access: Access) -> None:
    async with connect(_stream_url(deployment, access)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": access.outsider}))

        assert await close_code(ws) == 4404


@pytest.mark.parametrize("parameter", ["token", "access_token", "auth"])
async def test_a_token_in_the_url_is_not_accepted(
    deployment: Deployment, access: Access, parameter: str
) -> None:
    url = _stream_url(deployment, access, f"after=0&{parameter}={access.alice}")
    async with connect(url) as ws:
        # Had the URL token counted, "ready" would come first; instead the server
        # still wants an authentication frame, and this is not one.
        await ws.send(json.dumps({"type": "ping"}))

        assert await close_code(ws) == 4401
