"""Request size limit (ASGI middleware) and rate limiting per device and per address."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.errors import error_body
from server.api.observe import request_id
from server.errors import RateLimited

CHUNK_PATH = re.compile(r"^/v1/rooms/[A-Za-z0-9_-]{1,64}/uploads/[A-Za-z0-9_-]{1,64}/chunks/\d+$")
"""A document chunk: its body is streamed to disk, its length set by the upload."""


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, however they are sent, except on
    paths `exempt` accepts (whose routes limit their own bodies)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, exempt: Callable[[str], object] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exempt is not None and self.exempt(scope["path"])):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _too_large(scope, send, self.max_bytes)
                return
        seen = 0
        too_large = False

        async def limited() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            # The app may catch _BodyTooLarge (FastAPI turns body errors into a 400);
            # once the limit is hit, its answer is dropped and the 413 sent instead.
            if not too_large:
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except _BodyTooLarge:
            pass
        if too_large:
            await _too_large(scope, send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, send: Send, max_bytes: int) -> None:
    message = f"request body larger than {max_bytes} bytes"
    body = json.dumps(error_body("too_large", message, request_id(scope))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """A token bucket per key (a device, a client address), in this process.

    At most `max_keys` buckets are kept: the least recently used go first (a bucket
    forgotten is a full one, so only a caller idle longer than everyone else's gains).
    """

    def __init__(
        self, rate: float, burst: int, *, what: str = "this device", max_keys: int = 100_000
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.what = what
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise `RateLimited` saying when to retry."""
        now = time.monotonic()
        tokens, stamp = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
        if tokens < 1.0:
            self._keep(key, tokens, now)
            raise RateLimited(
                f"too many requests from {self.what}; slow down",
                retry_after=(1.0 - tokens) / self.rate,
            )
        self._keep(key, tokens - 1.0, now)

    def _keep(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)  # re-inserted: the dict is in order of use
        while len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]


def client_key(host: str | None) -> str:
    """The rate-limit key of a client address: the address itself, an IPv6 address's
    /64 (what one subscriber usually holds), or the text it came as."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
