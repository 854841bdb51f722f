"""The event stream's count of failed connections, and its turns round a profile's URLs.

Each "server" here is a real listening socket that accepts a connection and
closes it at once, so every WebSocket handshake fails, and counts the
connections. The stream must make exactly `MAX_CONSECUTIVE_FAILURES` of them
before it gives up (it once counted each failure twice and gave up halfway),
spread evenly over its URLs. Real replicas killed mid-stream:
tests/e2e/test_failover.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from client_sdk.client import stream
from client_sdk.client.http import HttpSession
from client_sdk.client.stream import EventStream
from client_sdk.protocol.errors import TransportError

ATTEMPTS = 6


class Refuser:
    """A TCP listener that closes every connection it accepts, and counts them."""

    def __init__(self) -> None:
        self.accepted = 0
        self.server: asyncio.Server | None = None

    async def _handle(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


class TokenHeld(HttpSession):
    """A session that already holds a token (the stream's connections are what counts)."""

    async def token(self) -> str:
        return "token"


@pytest.fixture
async def refusers() -> AsyncIterator[tuple[list[Refuser], list[str]]]:
    found = [Refuser(), Refuser()]
    urls = [await r.start() for r in found]
    try:
        yield found, urls
    finally:
        for r in found:
            await r.stop()


async def _run_until_it_gives_up(http: HttpSession) -> TransportError:
    events = EventStream(http, "room", since=lambda: 0)
    with pytest.raises(TransportError) as failed:
        async for _ in events.batches(after=0):
            pass
    await http.aclose()
    return failed.value


async def test_the_stream_gives_up_after_exactly_its_number_of_failed_connections(
    refusers: tuple[list[Refuser], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "MAX_CONSECUTIVE_FAILURES", ATTEMPTS)
    (first, _), (url, _) = refusers

    failed = await asyncio.wait_for(_run_until_it_gives_up(TokenHeld(url)), 30)

    assert first.accepted == ATTEMPTS
    assert f"cannot reach {url}" in str(failed)


async def test_the_stream_takes_each_url_in_turn_and_names_them_all_when_it_gives_up(
    refusers: tuple[list[Refuser], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "MAX_CONSECUTIVE_FAILURES", ATTEMPTS)
    (first, second), urls = refusers

    failed = await asyncio.wait_for(_run_until_it_gives_up(TokenHeld(urls)), 30)

    assert (first.accepted, second.accepted) == (ATTEMPTS // 2, ATTEMPTS // 2)
    assert f"cannot reach {urls[0]}, {urls[1]}" in str(failed)
