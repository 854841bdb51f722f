"""The WebSocket event stream, with reconnection and resume.

`EventStream.batches(after=SEQ)` yields the server's batches of events (each
with its checkpoint and proofs) in order forever. When the connection drops
it reconnects with capped exponential backoff and asks the server to resume
after the last event it yielded, and to prove consistency from the newest
checkpoint the caller verified, so the caller sees no gap and no duplicate.
Authentication is the ``Authorization`` header, never the URL.

With several server URLs (replicas of one deployment: one database, one log)
a connection that could not be made (refused, timed out, a gateway's 502, 503
or 504), or that ended without a close frame (the server died) or with "going
away" (1001), "internal error" (1011), "service restart" (1012), "try again
later" (1013) or "bad gateway" (1014), moves the session to the next URL
(`HttpSession.fail_over`), where the stream resumes after the same event at
once; it backs off only once every URL failed in a row. A close the server
chose for this stream (a 44xx refusal, 4008 overflow) stays with that server.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable

from client_sdk.client.http import FAILOVER_STATUSES, HttpSession, backoff_delay
from client_sdk.protocol.errors import ProtocolError, TransportError, api_error
from client_sdk.protocol.wire.stream import BatchFrame, CloseCode, ReadyFrame, parse_server_frame

MAX_CONSECUTIVE_FAILURES = 50
"""Connections in a row that fail before a ready frame (over all URLs) before giving up."""
FAILOVER_CLOSE_CODES = frozenset(
    {CloseCode.GOING_AWAY, 1006, CloseCode.INTERNAL_ERROR, 1012, 1013, 1014}
)
"""Close codes that say the server (not this stream) is going or gone: try the next URL."""


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
        from websockets.exceptions import (
            ConnectionClosed,
            InvalidHandshake,
            InvalidStatus,
            InvalidURI,
        )

        cursor = after
        failures = 0
        relogin = False
        try:
            while True:
                self._move(StreamState.CONNECTING)
                token = await (self.http.login() if relogin else self.http.token())
                relogin = False
                server = self.http.server
                url = (
                    f"{ws_url(server)}/v1/rooms/{self.room_id}/stream"
                    f"?after={cursor}&since={self.since()}"
                )
                elsewhere = False
                error: Exception | None = None
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
                    elsewhere = (code or 1006) in FAILOVER_CLOSE_CODES
                    error = closed
                except InvalidStatus as refused:
                    elsewhere = refused.response.status_code in FAILOVER_STATUSES
                    error = refused
                except (OSError, InvalidHandshake, TimeoutError) as exc:
                    elsewhere, error = True, exc
                except InvalidURI as exc:
                    raise ProtocolError(str(exc)) from exc
                if self.state is StreamState.CONNECTING:  # no ready frame: a failed connection
                    failures += 1
                    if failures >= MAX_CONSECUTIVE_FAILURES:
                        tried = self.http.tried(server, failures)
                        raise TransportError(f"cannot reach {tried}: {error}") from error
                moved = elsewhere and self.http.fail_over(server) != server
                self._move(StreamState.BACKING_OFF)
                if not moved or failures % len(self.http.servers) == 0:
                    # the same server again, or every URL failed in a row: wait first
                    await asyncio.sleep(backoff_delay(failures // len(self.http.servers)))
        finally:
            if self.state is not StreamState.CLOSED:
                self.state = StreamState.CLOSED
