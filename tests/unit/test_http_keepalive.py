"""A connection the server closes while it sits in the pool: the next read on it fails
with "Server disconnected without sending a response". A read goes again once on a new
connection; a write is left to its caller, which repeats it under its id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from client_sdk.client.http import HttpSession
from client_sdk.protocol.errors import TransportError

_OK = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n"
    b'connection: keep-alive\r\n\r\n{"ok":true}'
)


class ClosingServer:
    """Answers the first request of each connection, keeps it open, then closes it on
    the second request without answering (a keep-alive timeout lost in the race)."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for answered in (True, False):
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head.split(b"\r\n", 1)[0])
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                if answered:
                    writer.write(_OK)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def closing() -> AsyncIterator[tuple[str, ClosingServer]]:
    server = ClosingServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        listener.close()
        await listener.wait_closed()


async def test_a_read_on_a_connection_closed_in_the_pool_goes_again_on_a_new_one(
    closing: tuple[str, ClosingServer],
) -> None:
    url, server = closing
    http = HttpSession(url)
    try:
        assert await http.request("GET", "/v1/first", auth=False) == {"ok": True}
        assert await http.request("GET", "/v1/second", auth=False) == {"ok": True}
    finally:
        await http.aclose()
    second = b"GET /v1/second HTTP/1.1"
    assert server.requests == [b"GET /v1/first HTTP/1.1", second, second]  # closed, then again
    assert server.connections == 2


async def test_a_write_on_a_connection_closed_in_the_pool_is_left_to_its_caller(
    closing: tuple[str, ClosingServer],
) -> None:
    url, server = closing
    http = HttpSession(url)
    try:
        assert await http.request("GET", "/v1/first", auth=False) == {"ok": True}
        with pytest.raises(TransportError, match="disconnected"):
            await http.request("POST", "/v1/things", json={}, auth=False)
    finally:
        await http.aclose()
    assert server.requests == [b"GET /v1/first HTTP/1.1", b"POST /v1/things HTTP/1.1"]
