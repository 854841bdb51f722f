"""An unexpected failure on the event stream is logged with its traceback and closes
the stream with 1011, never leaving the client without a close frame."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

import pytest
from fastapi import FastAPI

from client_sdk.protocol.wire.stream import CloseCode
from server.services.common import Principal
from tests.api.conftest import MakeApi


async def _stream(app: FastAPI, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """Open a stream on the app in-process (ASGI); what it sent until it returned."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    sent: list[dict[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/v1/rooms/r1/stream",
        "raw_path": b"/v1/rooms/r1/stream",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("parley.test", 80),
        "subprotocols": [],
        "state": {},
    }
    await asyncio.wait_for(app(scope, inbox.get, send), 10)
    return sent


async def test_an_unexpected_failure_is_logged_and_closes_the_stream_with_1011(
    make_api: MakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    api = await make_api()

    async def broken(token: str) -> Principal:
        raise RuntimeError("the token table caught fire")

    api.identity.authenticate = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="server.api.ws"):
        sent = await _stream(api.app, [(b"authorization", b"Bearer abc")])

    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[-1]["code"] == CloseCode.INTERNAL_ERROR
    [record] = caplog.records
    assert record.exc_info is not None
    assert "the token table caught fire" in caplog.text
