"""The room event stream over WebSocket.

Connect to ``/v1/rooms/{room_id}/stream?after=SEQ``. Authenticate with an
``Authorization: Bearer`` header or, where headers cannot be set, a first
frame ``{"type": "auth", "token": "..."}`` — never a token in the URL. The
server answers ``{"type": "ready"}`` once subscribed, replays every event
after ``SEQ`` and then streams new ones as ``{"type": "batch", ...}`` frames
shaped like a page of ``GET /v1/rooms/{id}/events`` (events with their
inclusion proofs, the checkpoint, and its consistency proof from the previous
batch's size, or from ``since`` for the first): no gap, no duplicate. A
subscriber that falls behind is closed with `CloseCode.OVERFLOW` (4008) and
resumes from its cursor; other failures close with the `CloseCode` that
`server.api.errors` maps them to (`client_sdk.protocol.wire.stream`).

Every frame a client sends is parsed into its model (`parse_client_frame`):
binary, not JSON, not an object, an unknown type or a second authentication
close with 4400, a frame over `MAX_CLIENT_FRAME` with 4413, a first frame that is
not an authentication with 4401. Logging out or revoking the device closes the
stream with 4401 within a second, on whichever replica holds it. A server
shutting down closes every stream with 1001 (going away): the client resumes
from its cursor, on this server once it is back or on another replica. Anything
unexpected is logged and closes with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, TypeGuard

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.types import Message
from starlette.websockets import WebSocketState

from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.wire.parse import load_json
from client_sdk.protocol.wire.stream import (
    MAX_CLIENT_FRAME,
    AuthFrame,
    BatchFrame,
    CloseCode,
    PingFrame,
    PongFrame,
    ReadyFrame,
    parse_client_frame,
)
from server.api.deps import Services, bearer_token, charge_address
from server.api.errors import ws_close_code
from server.api.rooms import events_page
from server.errors import (
    DomainError,
    MalformedInput,
    NotAuthenticated,
    NotFound,
    RateLimited,
    TooLarge,
)
from server.metrics import Metrics
from server.services.common import Principal
from server.services.messages import PreparedBatch

router = APIRouter()
log = logging.getLogger(__name__)

AUTH_TIMEOUT_SECONDS = 10.0
_CURSOR = re.compile(r"[0-9]{1,15}")
_ROOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
PAGE = 200


class ConnectionCounter:
    """Open WebSocket connections per device, in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, device_id: str) -> Iterator[None]:
        """Count one connection for `device_id` while the block runs."""
        if self._open[device_id] >= self.limit:
            raise RateLimited(f"at most {self.limit} open streams per device")
        self._open[device_id] += 1
        try:
            yield
        finally:
            self._open[device_id] -= 1


class _GoingAway(Exception):
    """The server is shutting down: close with 1001 so the client resumes elsewhere."""


async def _authenticate(websocket: WebSocket, services: Services) -> tuple[Principal, str]:
    """The caller and the token it authenticated with (header, else first frame)."""
    header = websocket.headers.get("authorization")
    token = bearer_token(header) if header is not None else await _auth_frame(websocket)
    return await services.identity.authenticate(token), token


async def _auth_frame(websocket: WebSocket) -> str:
    try:
        message = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        raise NotAuthenticated("no authentication frame") from exc
    value = _json_object(message)
    if value.get("type") != "auth":
        raise NotAuthenticated('first frame must be {"type": "auth", "token": ...}')
    try:
        frame = parse_client_frame(value)
    except ProtocolError as exc:
        raise NotAuthenticated(f"authentication frame: {exc}") from exc
    assert isinstance(frame, AuthFrame)
    return frame.token


def _frame_text(message: Message) -> str:
    """The text of a received frame; `WebSocketDisconnect` if the client left."""
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if not isinstance(text, str):
        raise MalformedInput("frames must be JSON text, not binary")
    if len(text) > MAX_CLIENT_FRAME:
        raise TooLarge(f"frames are at most {MAX_CLIENT_FRAME} characters")
    return text


def _json_object(message: Message) -> dict[str, Any]:
    try:
        value = load_json(_frame_text(message), what="frame")
    except ProtocolError as exc:
        raise MalformedInput(str(exc)) from exc
    if not isinstance(value, dict):
        raise MalformedInput("a frame must be a JSON object")
    return value


def _client_frame(message: Message) -> AuthFrame | PingFrame:
    try:
        return parse_client_frame(_frame_text(message))
    except ProtocolError as exc:
        raise MalformedInput(str(exc)) from exc


@router.websocket("/v1/rooms/{room_id}/stream")
async def stream(websocket: WebSocket, room_id: str) -> None:
    """Replay events after ``after`` and stream new ones."""
    services: Services = websocket.app.state.services
    counter: ConnectionCounter = websocket.app.state.ws_connections
    metrics: Metrics = websocket.app.state.metrics
    await websocket.accept()
    with metrics.websocket_streams.track_inprogress():
        await _stream(websocket, room_id, services, counter, metrics)


async def _stream(
    websocket: WebSocket,
    room_id: str,
    services: Services,
    counter: ConnectionCounter,
    metrics: Metrics,
) -> None:
    try:
        charge_address(services, None if websocket.client is None else websocket.client.host)
        if not _ROOM_ID.fullmatch(room_id):
            raise NotFound("no such room")
        after = _after(websocket.query_params.get("after", "0"))
        since = _after(websocket.query_params.get("since", "0"))
        epoch = services.streams.epoch()
        principal, token = await _authenticate(websocket, services)
        await services.messages.check_member(principal, room_id)
        with counter.hold(principal.device_id):
            await _serve(
                websocket, services, metrics, principal, token, room_id, after, since, epoch
            )
    except _GoingAway:
        await _close(websocket, CloseCode.GOING_AWAY, "server shutting down; resume")
    except DomainError as exc:
        await _close(websocket, ws_close_code(exc), exc.message)
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("event stream of room %r failed", room_id)
        await _close(websocket, CloseCode.INTERNAL_ERROR, "internal error")


def _after(raw: str) -> int:
    if not _CURSOR.fullmatch(raw):
        raise MalformedInput("after and since must be non-negative integers")
    return int(raw)


async def _serve(
    websocket: WebSocket,
    services: Services,
    metrics: Metrics,
    principal: Principal,
    token: str,
    room_id: str,
    after: int,
    since: int,
    epoch: int,
) -> None:
    with services.streams.subscribe(room_id, token=token, principal=principal, epoch=epoch) as sub:
        await websocket.send_json(ReadyFrame().model_dump(mode="json"))
        cursor = after

        async def pump() -> None:
            nonlocal cursor, since
            while True:
                batch = await services.messages.events(
                    principal, room_id, after=cursor, limit=PAGE, since=since
                )
                if batch.events:
                    frame = events_page(batch, cursor, BatchFrame)
                    await websocket.send_json(frame.model_dump(mode="json"))
                    cursor = batch.events[-1].seq
                    since = batch.size
                if len(batch.events) < PAGE:
                    return

        async def send_prepared(prepared: PreparedBatch) -> None:
            nonlocal cursor, since
            if prepared.frame is None:  # the first subscriber encodes it for all
                prepared.frame = events_page(prepared.batch, cursor, BatchFrame).model_dump_json()
            await websocket.send_text(prepared.frame)
            cursor = prepared.batch.events[-1].seq
            since = prepared.batch.size

        lag = metrics.fanout_lag_seconds

        async def send_loop() -> None:
            await pump()
            while True:
                notices = [await sub.queue.get()]
                while not sub.queue.empty():
                    notices.append(sub.queue.get_nowait())
                if sub.overflowed.is_set():
                    await _close(websocket, CloseCode.OVERFLOW, "subscriber fell behind; resume")
                    return
                for notice in notices:
                    if notice.seq <= cursor:
                        continue
                    prepared = notice.prepared
                    if _continues(prepared, cursor, since):
                        await send_prepared(prepared)
                    else:
                        await pump()
                    lag.observe(time.perf_counter() - notice.published)

        async def receive_loop() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if isinstance(_client_frame(message), AuthFrame):
                    raise MalformedInput("the stream is already authenticated")
                await websocket.send_json(PongFrame().model_dump(mode="json"))

        async def guard() -> None:
            """End the stream once its token or device is revoked (`Fanout.close_streams`)."""
            while True:
                await sub.attention.wait()
                sub.attention.clear()
                if sub.going_away:
                    raise _GoingAway
                if sub.revoked_reason is not None:
                    raise NotAuthenticated(sub.revoked_reason)
                await services.identity.authenticate(token)

        tasks = [asyncio.ensure_future(t()) for t in (send_loop, receive_loop, guard)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure


def _continues(prepared: object, cursor: int, since: int) -> TypeGuard[PreparedBatch]:
    """Whether `prepared` is a batch that starts right after `cursor` and proves
    consistency from `since`, the size this subscriber last saw."""
    return (
        isinstance(prepared, PreparedBatch)
        and bool(prepared.batch.events)
        and prepared.batch.events[0].seq == cursor + 1
        and prepared.batch.since == since
    )


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # A close reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5).
    short = reason.encode("utf-8", "replace")[:123].decode("utf-8", "ignore")
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(code=code, reason=short)
