"""The WebSocket event stream, with reconnection and resume.

`EventStream.batches(after=SEQ)` yields the server's batches of events (each
with its checkpoint and proofs) in order forever. When the connection drops
it reconnects with capped exponential backoff and asks the server to resume
after the last event it yielded, and to prove consistency from the newest
checkpoint the caller verified, so the caller sees no gap and no duplicate.
Authentication is the ``Authorization`` header, never the URL.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable

from client_sdk.client.http import HttpSession, backoff_delay
from client_sdk.protocol.errors import ProtocolError, TransportError, api_error
from client_sdk.protocol.wire.stream import BatchFrame, CloseCode, ReadyFrame, parse_server_frame

MAX_CONSECUTIVE_FAILURES = 50


class StreamState(enum.Enum):
    """Where the stream is in its life."""

    IDLE = "idle"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKING_OFF = "backing-off"
    CLOSED = "closed"


_ALLOWED = {
    StreamState.IDLE: {StreamState.CONNECTING, StreamState.CLOSED},
    StreamState.CONNECTING: {StreamState.STREAMING, StreamState.BACKING_OFF, StreamState.CLOSED},
    StreamState.STREAMING: {StreamState.BACKING_OFF, StreamState.CLOSED},
    StreamState.BACKING_OFF: {StreamState.CONNECTING, StreamState.CLOSED},
    StreamState.CLOSED: set(),
}


def _close_code(code: int | None) -> CloseCode | None:
    """The server's close code, or None for any other (a network close: reconnect)."""
    try:
        return None if code is None else CloseCode(code)
    except ValueError:
        return None


def ws_url(server: str) -> str:
    """The WebSocket base URL of an http(s) server URL."""
    if server.startswith("https://"):
        return "wss://" + server[len("https://") :]
    if server.startswith("http://"):
        return "ws://" + server[len("http://") :]
    raise ProtocolError(f"server URL must start with http:// or https://, not {server!r}")


class EventStream:
    """A resumable subscription to one room's events."""

    def __init__(self, http: HttpSession, room_id: str, *, since: Callable[[], int]) -> None:
        self.http = http
        self.room_id = room_id
        self.since = since
        self.state = StreamState.IDLE
        self.connections = 0

    def _move(self, new: StreamState) -> None:
        if new not in _ALLOWED[self.state]:
            raise RuntimeError(f"stream cannot go from {self.state.value} to {new.value}")
        self.state = new

    async def batches(self, *, after: int) -> AsyncIterator[BatchFrame]:
        """Batches of events with ``seq > after``, in order, across reconnections."""
        # Imported here: a client that never streams (`parley send`, `parley read`
        # without --follow) need not load the websockets package.
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        cursor = after
        failures = 0
        relogin = False
        try:
            while True:
                self._move(StreamState.CONNECTING)
                token = await (self.http.login() if relogin else self.http.token())
                relogin = False
                url = (
                    f"{ws_url(self.http.server)}/v1/rooms/{self.room_id}/stream"
                    f"?after={cursor}&since={self.since()}"
                )
                try:
                    async with connect(
                        url,
                        additional_headers={"Authorization": f"Bearer {token}"},
                        max_size=8 * 1024 * 1024,
                        open_timeout=10,
                    ) as ws:
                        self.connections += 1
                        async for raw in ws:
                            if isinstance(raw, bytes):
                                raise ProtocolError("stream frame: binary, not a JSON text frame")
                            frame = parse_server_frame(raw)
                            if isinstance(frame, ReadyFrame):
                                self._move(StreamState.STREAMING)
                                failures = 0
                            elif isinstance(frame, BatchFrame) and frame.events:
                                if self.state is not StreamState.STREAMING:
                                    raise ProtocolError("stream batch before the ready frame")
                                first = frame.events[0].seq
                                if first != cursor + 1:
                                    raise ProtocolError(
                                        f"stream batch starts at {first}, expected {cursor + 1}"
                                    )
                                cursor = frame.events[-1].seq
                                yield frame
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
                    reason = closed.rcvd.reason if closed.rcvd else ""
                    close = _close_code(code)
                    if close is not None and close.fatal and close.http_status is not None:
                        raise api_error(close.http_status, "stream_closed", reason) from closed
                    relogin = close is CloseCode.UNAUTHENTICATED
                except (OSError, InvalidHandshake, TimeoutError) as exc:
                    failures += 1
                    if failures >= MAX_CONSECUTIVE_FAILURES:
                        raise TransportError(f"cannot reach {self.http.server}: {exc}") from exc
                except InvalidURI as exc:
                    raise ProtocolError(str(exc)) from exc
                if self.state is StreamState.CONNECTING:
                    failures += 1
                self._move(StreamState.BACKING_OFF)
                await asyncio.sleep(backoff_delay(failures))
        finally:
            if self.state is not StreamState.CLOSED:
                self.state = StreamState.CLOSED
