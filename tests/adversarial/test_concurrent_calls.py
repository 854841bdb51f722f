"""Concurrent calls on one client raise no false alarms: answers overtaken by other
answers carry smaller checkpoints, which are old news once proven a prefix of the
newest one, never a "checkpoint is older than the one seen" error."""

from __future__ import annotations

import asyncio

from client_sdk.client import Message
from tests.support.attacks import Talks

SENDS = 50


async def _read_all(talks: Talks, after: int) -> list[Message]:
    return [m async for m in talks.bob.messages(talks.room_id, after=after)]


async def test_fifty_concurrent_sends_on_one_client_all_verify(talks: Talks) -> None:
    texts = [f"offer {n}" for n in range(SENDS)]

    receipts = await asyncio.gather(*(talks.alice.send(talks.room_id, t) for t in texts))

    assert sorted(r.seq for r in receipts) == list(range(4, 4 + SENDS))
    read = await _read_all(talks, after=3)
    assert sorted(m.text for m in read) == sorted(texts)
    assert [m.seq for m in read] == list(range(4, 4 + SENDS))
    stored = talks.alice.keystore.checkpoint(talks.room_id)
    assert stored is not None
    assert stored.size == 3 + SENDS


async def test_concurrent_reads_of_one_room_on_one_client(talks: Talks) -> None:
    for n in range(5):
        await talks.bob.send(talks.room_id, f"offer {n}")

    reads = await asyncio.gather(*(_read_all(talks, after=0) for _ in range(10)))

    assert all([m.text for m in read] == [f"offer {n}" for n in range(5)] for read in reads)
