"""The WebSocket event stream: its frames and its close codes.

Connect to ``/v1/rooms/{room_id}/stream?after=SEQ&since=SIZE``. A client that
cannot set headers sends `AuthFrame` first. The server answers `ReadyFrame`
once subscribed, then `BatchFrame` after batch (a page of events, shaped like
`EventsPage`), and `PongFrame` to a `PingFrame`. It ends a stream with one of
the `CloseCode` values: a frame that is not a `ClientFrame` (binary, not JSON,
not an object, an unknown type, a second `AuthFrame`) with `CloseCode.MALFORMED`,
one longer than `MAX_CLIENT_FRAME` with `CloseCode.TOO_LARGE`, a revoked token
or device with `CloseCode.UNAUTHENTICATED`, a server shutting down with
`CloseCode.GOING_AWAY` (resume, there or elsewhere), and an unexpected server
failure with `CloseCode.INTERNAL_ERROR`.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from client_sdk.protocol.models import WireModel
from client_sdk.protocol.wire.base import Answer
from client_sdk.protocol.wire.events import EventsPage
from client_sdk.protocol.wire.parse import parse_shape


class CloseCode(enum.IntEnum):
    """Why the server closed a stream; 44xx mirror the HTTP statuses of the same errors."""

    OVERFLOW = 4008
    """The subscriber fell behind; reconnect and resume from the cursor."""
    MALFORMED = 4400
    UNAUTHENTICATED = 4401
    """The token was refused: log in again, then reconnect."""
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    CONFLICT = 4409
    TOO_LARGE = 4413
    """A frame from the client was larger than any frame it may send."""
    INVALID = 4422
    RATE_LIMITED = 4429
    """Too many open streams or requests: back off, then reconnect."""
    GOING_AWAY = 1001
    """The server is shutting down: reconnect (to it or another replica) and resume."""
    INTERNAL_ERROR = 1011
    """The server failed unexpectedly (and logged why); reconnect later."""

    @property
    def http_status(self) -> int | None:
        """The HTTP status of the same refusal (4404 -> 404), or None for 4008."""
        return self - 4000 if 4400 <= self < 4500 else None

    @property
    def fatal(self) -> bool:
        """True when reconnecting cannot help (the request itself is refused)."""
        return self in _FATAL


_FATAL = frozenset(
    {
        CloseCode.MALFORMED,
        CloseCode.FORBIDDEN,
        CloseCode.NOT_FOUND,
        CloseCode.CONFLICT,
        CloseCode.INVALID,
        CloseCode.TOO_LARGE,
    }
)


MAX_CLIENT_FRAME = 4096
"""The largest text frame a client may send (characters); the server closes with
`CloseCode.TOO_LARGE` on a longer one."""


class AuthFrame(WireModel):
    """Client -> server, first frame, when no ``Authorization`` header can be sent."""

    type: Literal["auth"] = "auth"
    token: str = Field(min_length=1, max_length=1024)


class PingFrame(WireModel):
    """Client -> server: ask for a `PongFrame`."""

    type: Literal["ping"] = "ping"


class ReadyFrame(Answer):
    """Server -> client: subscribed; events after the cursor follow."""

    type: Literal["ready"] = "ready"


class PongFrame(Answer):
    """Server -> client: the answer to a `PingFrame`."""

    type: Literal["pong"] = "pong"


class BatchFrame(EventsPage):
    """Server -> client: a page of events, their proofs, and the checkpoint's consistency
    with the previous batch's size (or ``since`` for the first)."""

    type: Literal["batch"] = "batch"


ClientFrame = Annotated[AuthFrame | PingFrame, Field(discriminator="type")]
"""Any frame a client may send, told apart by its ``type``."""

_CLIENT_FRAME: TypeAdapter[AuthFrame | PingFrame] = TypeAdapter(ClientFrame)


def parse_client_frame(data: str | Any) -> AuthFrame | PingFrame:
    """One text frame from a client (or its JSON, already loaded) as its model, or
    `ProtocolError` (not JSON, not an object, an unknown type, a field amiss)."""
    return parse_shape(_CLIENT_FRAME, data, what="client frame")


ServerFrame = Annotated[ReadyFrame | PongFrame | BatchFrame, Field(discriminator="type")]
"""Any frame the server sends, told apart by its ``type``."""

_SERVER_FRAME: TypeAdapter[ReadyFrame | PongFrame | BatchFrame] = TypeAdapter(ServerFrame)


def parse_server_frame(data: bytes | str) -> ReadyFrame | PongFrame | BatchFrame:
    """One text frame from the server as its model, or `ProtocolError`."""
    return parse_shape(_SERVER_FRAME, data, what="stream frame")
