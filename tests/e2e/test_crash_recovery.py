"""No loss across a server crash (docs/design.md §1.6): what the server acknowledged is
durable, and a follower — the `parley read --follow` command or the SDK —
prints every message exactly once, in order, across a SIGKILL and a restart
on the same port and database."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest

from client_sdk.client import Message
from tests.e2e.conftest import Negotiation
from tests.e2e.harness import Cast, Deployment
from tests.support.cli import CliProcess

pytestmark = pytest.mark.slow

TIMEOUT = 30.0
"""How long to wait for one message to arrive (reconnection backoff included)."""


async def test_an_acknowledged_message_survives_a_sigkill(
    deployment: Deployment, negotiation: Negotiation
) -> None:
    room = negotiation.room_id
    texts = [f"acknowledged {i}" for i in range(5)]
    receipts = [await negotiation.alice.send(room, text) for text in texts]
    deployment.crash()  # at once: nothing after the last reply gets a chance to run

    await asyncio.to_thread(deployment.restart)

    read = [(m.seq, m.text) async for m in negotiation.bob.messages(room)]
    assert read == [(r.seq, text) for r, text in zip(receipts, texts, strict=True)]


async def test_a_send_retried_after_a_lost_reply_gets_the_original_receipt(
    deployment: Deployment, negotiation: Negotiation
) -> None:
    room, message_id = negotiation.room_id, uuid.uuid4().hex
    first = await negotiation.alice.send(room, "offer", message_id=message_id)

    # The app never saw that reply (say the server died right after committing), so it
    # sends the same message again under the same id.
    retried = await negotiation.alice.send(room, "offer", message_id=message_id)

    assert retried == first
    read = [(m.seq, m.text) async for m in negotiation.bob.messages(room)]
    assert read == [(first.seq, "offer")]


async def test_the_cli_follower_prints_every_message_once_across_a_server_crash(
    deployment: Deployment, cast: Cast, negotiation: Negotiation, tmp_path: Path
) -> None:
    room, alice = negotiation.room_id, negotiation.alice
    history = await alice.send(room, "before the follower started")
    follower = CliProcess(
        ["read", room, "--follow", "--json"], env=cast.bob.env, stderr_path=tmp_path / "err"
    )
    try:
        printed = [await follower.next_json(TIMEOUT)]
        assert printed[0]["seq"] == history.seq
        sent = [history]
        for text in ("live 1", "live 2"):
            sent.append(await alice.send(room, text))
            printed.append(await follower.next_json(TIMEOUT))

        deployment.crash()
        await asyncio.to_thread(deployment.restart)
        for text in ("after restart 1", "after restart 2", "last"):
            sent.append(await alice.send(room, text))
        for _ in range(3):
            printed.append(await follower.next_json(TIMEOUT))
        # Nothing else is pending: the next line is the next message, not a repeat.
        sent.append(await alice.send(room, "sentinel"))
        printed.append(await follower.next_json(TIMEOUT))
    finally:
        follower.stop()

    assert [(m["seq"], m["text"]) for m in printed] == [
        (r.seq, text)
        for r, text in zip(
            sent,
            [
                "before the follower started",
                "live 1",
                "live 2",
                "after restart 1",
                "after restart 2",
                "last",
                "sentinel",
            ],
            strict=True,
        )
    ]
    seqs = [m["seq"] for m in printed]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert {m["sender_name"] for m in printed} == {"Alice"}


async def test_the_sdk_follower_yields_every_message_once_across_a_server_crash(
    deployment: Deployment, negotiation: Negotiation
) -> None:
    room, alice = negotiation.room_id, negotiation.alice
    received: asyncio.Queue[Message] = asyncio.Queue()

    async def follow() -> None:
        async for message in negotiation.bob.messages(room, follow=True):
            await received.put(message)

    follower = asyncio.create_task(follow())

    async def next_message() -> Message:
        """The next message, or the follower's own error if it died waiting."""
        getter = asyncio.ensure_future(received.get())
        done, _ = await asyncio.wait(
            {getter, follower}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if follower in done:
            follower.result()  # raises what stopped the follower
            raise AssertionError("the follower stopped")
        raise AssertionError(f"no message within {TIMEOUT}s")

    sent, got = [], []
    try:
        for text in ("live 1", "live 2"):
            sent.append((await alice.send(room, text)).seq)
            got.append(await next_message())

        await asyncio.to_thread(deployment.crash)
        await asyncio.to_thread(deployment.restart)
        for text in ("after restart 1", "after restart 2", "last"):
            sent.append((await alice.send(room, text)).seq)
        for _ in range(3):
            got.append(await next_message())
        sent.append((await alice.send(room, "sentinel")).seq)
        got.append(await next_message())
        assert received.empty()
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower

    assert [(m.seq, m.text) for m in got] == list(
        zip(
            sent,
            ["live 1", "live 2", "after restart 1", "after restart 2", "last", "sentinel"],
            strict=True,
        )
    )
    assert [m.seq for m in got] == list(range(got[0].seq, got[0].seq + len(got)))
