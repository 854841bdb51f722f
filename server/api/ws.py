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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import TypeGuard

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from client_sdk.protocol.wire.stream import BatchFrame, CloseCode, PongFrame, ReadyFrame
from server.api.deps import Services, bearer_token
from server.api.errors import ws_close_code
from server.api.rooms import events_page
from server.errors import DomainError, MalformedInput, NotAuthenticated, NotFound, RateLimited
from server.services.common import Principal
from server.services.messages import PreparedBatch

router = APIRouter()

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


async def _authenticate(websocket: WebSocket, services: Services) -> Principal:
    header = websocket.headers.get("authorization")
    if header is not None:
        return await services.identity.authenticate(bearer_token(header))
    try:
        first = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        raise NotAuthenticated("no authentication frame") from exc
    try:
        frame = json.loads(first)
    except json.JSONDecodeError as exc:
        raise MalformedInput("first frame is not JSON") from exc
    if not isinstance(frame, dict) or frame.get("type") != "auth":
        raise NotAuthenticated('first frame must be {"type": "auth", "token": ...}')
    token = frame.get("token")
    if not isinstance(token, str) or not token:
        raise NotAuthenticated("authentication frame lacks a token")
    return await services.identity.authenticate(token)


@router.websocket("/v1/rooms/{room_id}/stream")
async def stream(websocket: WebSocket, room_id: str) -> None:
    """Replay events after ``after`` and stream new ones."""
    services: Services = websocket.app.state.services
    counter: ConnectionCounter = websocket.app.state.ws_connections
    await websocket.accept()
    try:
        if not _ROOM_ID.fullmatch(room_id):
            raise NotFound("no such room")
        after = _after(websocket.query_params.get("after", "0"))
        since = _after(websocket.query_params.get("since", "0"))
        principal = await _authenticate(websocket, services)
        await services.messages.check_member(principal, room_id)
        with counter.hold(principal.device_id):
            await _serve(websocket, services, principal, room_id, after, since)
    except DomainError as exc:
        await _close(websocket, ws_close_code(exc), exc.message)
    except WebSocketDisconnect:
        pass


def _after(raw: str) -> int:
    if not _CURSOR.fullmatch(raw):
        raise MalformedInput("after and since must be non-negative integers")
    return int(raw)


async def _serve(
    websocket: WebSocket,
    services: Services,
    principal: Principal,
    room_id: str,
    after: int,
    since: int,
) -> None:
    with services.messages.subscribe(room_id) as sub:
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

        async def receive_loop() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") and '"ping"' in message["text"]:
                    await websocket.send_json(PongFrame().model_dump(mode="json"))

        sender = asyncio.ensure_future(send_loop())
        receiver = asyncio.ensure_future(receive_loop())
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver):
                task.cancel()
            for task in (sender, receiver):
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await task
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if isinstance(exc, (DomainError, WebSocketDisconnect)):
                    raise exc


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
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=code, reason=reason[:120])
