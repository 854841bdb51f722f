"""Request ids, access log lines and request metrics (one ASGI middleware).

Every HTTP request and WebSocket stream gets a request id: the caller's
``X-Request-Id`` if it is sane (`REQUEST_ID`), else a fresh one. It is echoed
in the ``X-Request-Id`` answer header, in every JSON error body
(`request_id`), and in the request's log line on the ``parley.access`` logger,
which carries the route template, status (a stream's: the close code
either side sent first) and
duration, and never a path, query string, header or body (where tokens and
ciphertext travel). An exception no handler turned into an answer is logged
once, with its traceback, and answered with the JSON error body (500).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from client_sdk.protocol.wire.errors import error_body
from server.metrics import UNMATCHED, Metrics

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""An incoming ``X-Request-Id`` kept as it is; anything else is replaced."""
HEADER = b"x-request-id"

access_log = logging.getLogger("parley.access")
log = logging.getLogger(__name__)


def request_id(scope: Scope) -> str | None:
    """The id `RequestObserver` gave the request of `scope`."""
    state: MutableMapping[str, Any] = scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


def _incoming_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            text: str = value.decode("latin-1")
            if REQUEST_ID.fullmatch(text):
                return text
            break
    return os.urandom(16).hex()


def route_template(scope: Scope) -> str:
    """The template of the route that matched (``/v1/rooms/{room_id}``), never the path."""
    path: object = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestObserver:
    """Gives each request its id, and logs and counts it when it ends."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope)
        if "state" not in scope:
            scope["state"] = {}
        scope["state"]["request_id"] = rid
        header = (HEADER, rid.encode("ascii"))
        start = time.perf_counter()
        status = 0
        started = False

        async def observed(message: Message) -> None:
            nonlocal status, started
            kind = message["type"]
            if kind == "http.response.start" or kind == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), header]
                status = message.get("status", 101)
                started = True
            elif kind == "websocket.close":
                status = message.get("code", 1000)
            await send(message)

        async def received() -> Message:
            nonlocal status
            message = await receive()
            if message["type"] == "websocket.disconnect" and status in (0, 101):
                status = message.get("code", 1000)  # the client closed the stream
            return message

        in_progress = self.metrics.requests_in_progress if kind == "http" else None
        if in_progress is not None:
            in_progress.inc()
        try:
            await self.app(scope, receive if kind == "http" else received, observed)
        except Exception:
            status = 500
            log.exception("unhandled error", extra={"request_id": rid})
            if not started and kind == "http":
                await _internal_error(send, header, rid)
        finally:
            if in_progress is not None:
                in_progress.dec()
            self._record(scope, rid, status, time.perf_counter() - start)

    def _record(self, scope: Scope, rid: str, status: int, seconds: float) -> None:
        route = route_template(scope)
        method = scope.get("method", "WS")
        if scope["type"] == "http":
            self.metrics.answered(method, route, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            duration_ms = round(seconds * 1000, 3)
            access_log.info(
                "%s %s %s %.1fms request %s",
                method,
                route,
                status,
                duration_ms,
                rid,
                extra={
                    "request_id": rid,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )


async def _internal_error(send: Send, header: tuple[bytes, bytes], rid: str) -> None:
    body = error_body("internal", "internal error", rid).model_dump(mode="json")
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), header],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
