"""One client used concurrently against a real server: sends, paged reads and a
followed WebSocket stream all at once raise no false alarm, and every message is
delivered once, in order."""

from __future__ import annotations

import asyncio

import pytest

from client_sdk.client import Message
from tests.e2e.conftest import Negotiation

pytestmark = pytest.mark.slow

SENDS = 50


async def test_sends_reads_and_a_stream_at_once_on_one_client(negotiation: Negotiation) -> None:
    alice, room_id = negotiation.alice, negotiation.room_id
    streamed: list[Message] = []

    async def follow() -> None:
        async for message in alice.messages(room_id, after=3, follow=True):
            streamed.append(message)
            if len(streamed) == SENDS:
                return

    async def read() -> list[int]:
        return [m.seq async for m in alice.messages(room_id)]

    follower = asyncio.create_task(follow())
    sends = asyncio.gather(*(alice.send(room_id, f"offer {n}") for n in range(SENDS)))
    reads = asyncio.gather(*(read() for _ in range(5)))
    receipts, seen = await asyncio.gather(sends, reads)
    await asyncio.wait_for(follower, timeout=60)

    assert sorted(r.seq for r in receipts) == list(range(4, 4 + SENDS))
    assert [m.seq for m in streamed] == list(range(4, 4 + SENDS))
    # Reads during the sends see a prefix of the messages, in order.
    assert all(seqs == list(range(4, 4 + len(seqs))) for seqs in seen)
    texts = [m.text async for m in negotiation.bob.messages(room_id, after=3)]
    assert sorted(texts) == sorted(f"offer {n}" for n in range(SENDS))
