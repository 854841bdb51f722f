"""Hostile frames on the event stream, and streams closed when what opened them is
revoked (issue 10). Every hostile frame closes the stream with a defined code and
leaves no traceback in the server's log; logging out closes the token's streams
within a second, on whichever replica holds them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from client_sdk.protocol.wire.stream import CloseCode
from server.realtime.fanout import REVOKE_CHANNEL
from server.services.common import secret_hash
from tests.e2e.conftest import OpenClient
from tests.e2e.harness import Cast, Deployment
from tests.e2e.streams import Access, close_code, first_events, next_frame, open_access, stream_url

pytestmark = pytest.mark.slow

REVOCATION_DEADLINE = 1.0
"""Seconds from a revocation's answer to the stream's close frame."""


@pytest.fixture(scope="module")
def access(shared_deployment: Deployment, cast: Cast) -> Access:
    """One room for the module."""
    shared_deployment.ensure_running()
    return asyncio.run(open_access(cast))


@pytest.fixture(autouse=True)
def no_traceback(deployment: Deployment) -> Iterator[None]:
    """Fail a test after which the server's log holds a traceback it did not hold before."""
    log = deployment.server.log_path
    start = log.stat().st_size
    yield
    with log.open("rb") as f:
        f.seek(start)
        added = f.read()
    assert b"Traceback" not in added, added.decode(errors="replace")


async def _authenticated(deployment: Deployment, room_id: str, token: str) -> ClientConnection:
    ws = await connect(
        stream_url(deployment, room_id), additional_headers={"Authorization": f"Bearer {token}"}
    )
    await first_events(ws)
    return ws


HOSTILE_FIRST_FRAMES = [
    pytest.param(b'{"type": "auth", "token": "x"}', CloseCode.MALFORMED, id="binary"),
    pytest.param("not json", CloseCode.MALFORMED, id="not-json"),
    pytest.param("[]", CloseCode.MALFORMED, id="json-array"),
    pytest.param('"auth"', CloseCode.MALFORMED, id="json-string"),
    pytest.param("null", CloseCode.MALFORMED, id="json-null"),
    pytest.param('{"type": "auth", "type": "auth"}', CloseCode.MALFORMED, id="duplicate-member"),
    pytest.param(
        '{"type": "auth", "token": "\\ud800"}', CloseCode.UNAUTHENTICATED, id="lone-surrogate"
    ),
    pytest.param(
        '{"type": "auth", "token": "a\\u0000b"}', CloseCode.UNAUTHENTICATED, id="nul-in-token"
    ),
    pytest.param('{"type": "auth", "token": 7}', CloseCode.UNAUTHENTICATED, id="number-token"),
    pytest.param(
        '{"type": "auth", "token": "x", "more": 1}', CloseCode.UNAUTHENTICATED, id="extra-field"
    ),
    pytest.param("x" * 5000, CloseCode.TOO_LARGE, id="oversized"),
    pytest.param("x" * 200_000, 1009, id="beyond-the-protocol-limit"),
]


@pytest.mark.parametrize(("frame", "code"), HOSTILE_FIRST_FRAMES)
async def test_a_hostile_first_frame_closes_with_a_defined_code(
    deployment: Deployment, access: Access, frame: str | bytes, code: int
) -> None:
    async with connect(stream_url(deployment, access.room_id), max_size=None) as ws:
        await ws.send(frame)

        assert await close_code(ws) == code


async def test_a_first_frame_of_invalid_utf8_closes_with_1007(
    deployment: Deployment, access: Access
) -> None:
    async with connect(stream_url(deployment, access.room_id)) as ws:
        await ws.send(b'{"type": "auth", "token": "\xff"}', text=True)

        assert await close_code(ws) == 1007


HOSTILE_LATER_FRAMES = [
    pytest.param(b'{"type": "ping"}', CloseCode.MALFORMED, id="binary"),
    pytest.param("ping", CloseCode.MALFORMED, id="not-json"),
    pytest.param('["ping"]', CloseCode.MALFORMED, id="json-array"),
    pytest.param('{"type": "subscribe"}', CloseCode.MALFORMED, id="unknown-type"),
    pytest.param('{"kind": "ping"}', CloseCode.MALFORMED, id="no-type"),
    pytest.param('{"type": "ping", "at": 1}', CloseCode.MALFORMED, id="extra-field"),
    pytest.param("{" * 3000, CloseCode.MALFORMED, id="deeply-nested"),
    pytest.param(" " * 5000, CloseCode.TOO_LARGE, id="oversized"),
]


@pytest.mark.parametrize(("frame", "code"), HOSTILE_LATER_FRAMES)
async def test_a_hostile_frame_on_an_open_stream_closes_it(
    deployment: Deployment, access: Access, frame: str | bytes, code: int
) -> None:
    ws = await _authenticated(deployment, access.room_id, access.alice)
    async with ws:
        await ws.send(frame)

        assert await close_code(ws) == code


async def test_a_second_auth_frame_closes_the_stream_with_4400(
    deployment: Deployment, access: Access
) -> None:
    async with connect(stream_url(deployment, access.room_id)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": access.alice}))
        await first_events(ws)

        await ws.send(json.dumps({"type": "auth", "token": access.bob}))

        assert await close_code(ws) == CloseCode.MALFORMED


async def test_invalid_utf8_on_an_open_stream_closes_with_1007(
    deployment: Deployment, access: Access
) -> None:
    ws = await _authenticated(deployment, access.room_id, access.alice)
    async with ws:
        await ws.send(b'{"type": "ping\xc3"}', text=True)

        assert await close_code(ws) == 1007


async def test_a_ping_is_answered_and_the_stream_stays_open(
    deployment: Deployment, access: Access
) -> None:
    ws = await _authenticated(deployment, access.room_id, access.alice)
    async with ws:
        for _ in range(2):
            await ws.send(json.dumps({"type": "ping"}))
            assert await next_frame(ws) == {"type": "pong"}


async def _logout(deployment: Deployment, token: str) -> None:
    async with httpx.AsyncClient(base_url=deployment.url) as http:
        answer = await http.post("/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 204, answer.text


async def _closes_within_the_deadline(ws: ClientConnection, since: float) -> int | None:
    code = await close_code(ws)
    assert time.monotonic() - since < REVOCATION_DEADLINE
    return code


async def test_logging_out_closes_the_open_stream_within_a_second(
    deployment: Deployment, access: Access, cast: Cast, open_client: OpenClient
) -> None:
    token = await open_client(cast.alice).token()
    ws = await _authenticated(deployment, access.room_id, token)
    async with ws:
        await _logout(deployment, token)

        assert await _closes_within_the_deadline(ws, time.monotonic()) == 4401


async def test_logging_out_leaves_the_same_devices_other_tokens_streaming(
    deployment: Deployment, access: Access, cast: Cast, open_client: OpenClient
) -> None:
    leaving, staying = [await open_client(cast.alice).token() for _ in range(2)]
    closing = await _authenticated(deployment, access.room_id, leaving)
    open_ws = await _authenticated(deployment, access.room_id, staying)
    async with closing, open_ws:
        await _logout(deployment, leaving)
        assert await close_code(closing) == 4401

        await open_ws.send(json.dumps({"type": "ping"}))
        assert await next_frame(open_ws) == {"type": "pong"}


async def test_a_logged_out_token_cannot_open_a_stream(
    deployment: Deployment, access: Access, cast: Cast, open_client: OpenClient
) -> None:
    token = await open_client(cast.alice).token()
    await _logout(deployment, token)

    async with connect(
        stream_url(deployment, access.room_id),
        additional_headers={"Authorization": f"Bearer {token}"},
    ) as ws:
        assert await close_code(ws) == 4401


async def _notify_from_another_replica(deployment: Deployment, payload: str) -> None:
    assert deployment.postgres_dsn is not None
    conn = await asyncpg.connect(deployment.postgres_dsn)
    try:
        await conn.execute("SELECT pg_notify($1, $2)", REVOKE_CHANNEL, payload)
    finally:
        await conn.close()


@pytest.fixture
def postgres_only(deployment: Deployment) -> None:
    if deployment.backend != "postgres":
        pytest.skip("replicas share PostgreSQL; a SQLite server is one process")


@pytest.mark.usefixtures("postgres_only")
async def test_a_logout_on_another_replica_closes_the_stream_here(
    deployment: Deployment, access: Access, cast: Cast, open_client: OpenClient
) -> None:
    token = await open_client(cast.alice).token()
    ws = await _authenticated(deployment, access.room_id, token)
    async with ws:
        # What another replica's logout sends when its transaction commits.
        await _notify_from_another_replica(
            deployment, f"token {secret_hash(token).hex()} other-replica"
        )

        assert await _closes_within_the_deadline(ws, time.monotonic()) == 4401


@pytest.mark.usefixtures("postgres_only")
async def test_a_device_revoked_on_another_replica_has_all_its_streams_closed_here(
    deployment: Deployment, access: Access, cast: Cast, open_client: OpenClient
) -> None:
    client = open_client(cast.alice)
    tokens = [await client.token(), await open_client(cast.alice).token()]
    streams = [await _authenticated(deployment, access.room_id, t) for t in tokens]
    bob = await _authenticated(deployment, access.room_id, access.bob)
    try:
        sent = time.monotonic()
        await _notify_from_another_replica(
            deployment, f"device {client.whoami()['device_id']} other-replica"
        )

        for ws in streams:
            assert await _closes_within_the_deadline(ws, sent) == 4401
        await bob.send(json.dumps({"type": "ping"}))
        assert await next_frame(bob) == {"type": "pong"}
    finally:
        for ws in [*streams, bob]:
            await ws.close()
