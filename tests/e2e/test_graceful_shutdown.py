"""A real server stopped with SIGTERM (issue 12): it stops accepting, closes every
event stream with 1001 (going away), finishes the request in flight (a send whose
answer the client gets is durable after the restart), and exits 0 within its grace
period; the SDK's follower takes 1001 as "resume" and carries on once a server is
back, and a follower of one of several replicas moves to another at once."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from client_sdk.client import ParleyClient
from client_sdk.client.models import Message
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.wire.stream import CloseCode
from server.config import Settings
from tests.e2e.conftest import OpenClient, open_negotiation
from tests.e2e.harness import Cast, Deployment
from tests.e2e.streams import close_code, first_events, stream_url
from tests.support.replicas import enroll, postgres_database, running_replicas

pytestmark = pytest.mark.slow

TIMEOUT = 30.0
GRACE = Settings.model_fields["shutdown_grace_seconds"].default
"""The shared deployment runs with the default grace period."""


async def _in_flight(http: httpx.AsyncClient, count: int) -> None:
    """Return once the server is answering at least `count` requests besides the scrape
    that asks (await it, with a deadline)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            scraped = (await http.get("/metrics")).text
            for line in scraped.splitlines():
                if line.startswith("parley_http_requests_in_progress "):
                    if float(line.split()[1]) >= count + 1:
                        return
            await asyncio.sleep(0.02)


async def _follow(client: ParleyClient, room_id: str, want: int) -> list[Message]:
    """The first `want` messages of the room, following its stream across restarts."""
    seen: list[Message] = []
    async for message in client.messages(room_id, follow=True):
        seen.append(message)
        if len(seen) == want:
            break
    return seen


async def _body(first: bytes, rest: bytes, released: asyncio.Event) -> AsyncIterator[bytes]:
    yield first
    await released.wait()
    yield rest


async def test_sigterm_closes_streams_with_1001_and_finishes_the_send_in_flight(
    deployment: Deployment, cast: Cast, open_client: OpenClient
) -> None:
    mediator, alice, bob = (open_client(p) for p in (cast.mediator, cast.alice, cast.bob))
    room_id = await open_negotiation("Shutdown", mediator, alice=cast.alice, bob=cast.bob)
    auth = {"Authorization": f"Bearer {await alice.token()}"}
    envelope = await alice._sender.seal(
        room_id, {"type": "text", "text": "in flight"}, channel="plenary"
    )
    body = envelope.model_dump_json().encode()
    follower = asyncio.create_task(_follow(bob, room_id, 2))
    ws = await connect(stream_url(deployment, room_id), additional_headers=auth)
    await first_events(ws)
    released = asyncio.Event()
    process = deployment.server.process
    assert process is not None
    async with httpx.AsyncClient(base_url=deployment.url, timeout=TIMEOUT) as http:
        post = asyncio.create_task(
            http.post(
                f"/v1/rooms/{room_id}/messages",
                content=_body(body[:16], body[16:], released),
                headers={
                    **auth,
                    "Content-Type": "application/json",
                    "Content-Length": str(len(body)),
                },
            )
        )
        await _in_flight(http, 1)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)

        assert await close_code(ws) == CloseCode.GOING_AWAY
        released.set()
        answer = await asyncio.wait_for(post, TIMEOUT)
        assert answer.status_code == 201, answer.text
        exit_code = await asyncio.to_thread(process.wait, GRACE + TIMEOUT)
        assert exit_code == 0
        assert time.monotonic() - signalled < GRACE
        with pytest.raises(httpx.TransportError):
            await http.get("/healthz")

        await asyncio.to_thread(deployment.restart)
        after = answer.json()["seq"] - 1
        page = await http.get(f"/v1/rooms/{room_id}/events?after={after}", headers=auth)
    assert [e["message_id"] for e in page.json()["events"]] == [envelope.header.message_id]
    await alice.send(room_id, "after the restart")
    seen = await asyncio.wait_for(follower, TIMEOUT)
    assert [m.text for m in seen] == ["in flight", "after the restart"]


@pytest.mark.postgres
async def test_a_replica_stopped_with_sigterm_hands_its_followers_to_the_other(
    tmp_path: Path,
) -> None:
    async with postgres_database() as database_url:
        with running_replicas(database_url, tmp_path, 2) as (first, second):
            urls = [first.url, second.url]
            mona = await enroll(
                database_url, Role.MEDIATOR, "Mona", server=urls, home=tmp_path / "m"
            )
            bob = await enroll(database_url, Role.PARTY, "Bob", server=urls, home=tmp_path / "b")
            arrived: asyncio.Queue[Message] = asyncio.Queue()

            async def follow(room_id: str) -> None:
                async for message in bob.messages(room_id, follow=True):
                    arrived.put_nowait(message)

            follower = None
            try:
                room = await mona.create_room("Handover")
                await mona.add_member(room.room_id, bob.whoami()["account_id"], Side.B)
                follower = asyncio.create_task(follow(room.room_id))
                await mona.send(room.room_id, "before")
                assert (await asyncio.wait_for(arrived.get(), TIMEOUT)).text == "before"
                assert bob.http.server == first.url
                process = first.process
                assert process is not None

                process.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(process.wait, GRACE + TIMEOUT) == 0
                await mona.send(room.room_id, "after")

                assert (await asyncio.wait_for(arrived.get(), TIMEOUT)).text == "after"
                assert bob.http.server == second.url
                assert arrived.empty()
            finally:
                if follower is not None:
                    follower.cancel()
                await mona.aclose()
                await bob.aclose()
