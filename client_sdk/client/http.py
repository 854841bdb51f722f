"""HTTP plumbing: one authenticated `httpx.AsyncClient`, errors mapped to exceptions.

The SDK logs in by itself (challenge-response with the device key) and logs
in again when its token is about to expire or is refused.

A request that cannot reach the server fails at once with `TransportError`,
except inside `patiently()`: there it is sent again, with the event stream's
backoff, until the server answers (or the stream would give up too). A
follower checks each streamed batch that way, so a server that dies while a
batch is being checked is waited for instead of ending the follow.

Failover. A session may know several URLs of one deployment (replicas sharing
one database and log key), the preferred first. A failure that says nothing
about the request (the connection refused, reset or timed out; a 502, 503 or
504 from a proxy in front, raised as `TransportError` too) moves the session
to the next URL, round the list, and it stays there (sticky) until that one
fails too; a new session starts again from the preferred one. A request that
never reached a server, and a GET, HEAD or PUT (idempotent), is sent again at
once to the next URL, each URL tried once; any other write whose answer was
lost raises `TransportError` and is repeated by its caller under its
client-chosen id (`Sender.post`), so the server that has it answers with the
first receipt instead of logging it twice.
Every other answer, a 4xx above all, is the server's verdict: no failover.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from client_sdk.keystore.models import server_urls
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import (
    AuthenticationError,
    ClientClosedError,
    ProtocolError,
    TransportError,
    api_error,
)
from client_sdk.protocol.keys import SigLabel, SigningKey
from client_sdk.protocol.statements import login_payload
from client_sdk.protocol.wire import load_json, parse_answer, parse_answers
from client_sdk.protocol.wire.errors import ErrorBody
from client_sdk.protocol.wire.identity import ChallengeResponse, TokenResponse

M = TypeVar("M", bound=BaseModel)

TOKEN_MARGIN_MS = 60_000
MAX_BACKOFF_SECONDS = 5.0
KEEPALIVE_SECONDS = 4.0
"""How long an idle connection is kept for reuse: less than the 5 s after which
uvicorn closes it, so that a request rarely goes out on a connection being closed."""
PATIENT_ATTEMPTS = 50
"""Tries of one request inside `patiently()` (as many as the stream's reconnections)."""
FAILOVER_STATUSES = frozenset({502, 503, 504})
"""Answers of a gateway whose server is down or overloaded: try the next URL."""
REPEATABLE_METHODS = frozenset({"GET", "HEAD", "PUT"})
"""Requests sent again to the next URL even if the first may have reached its server."""
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_patient: ContextVar[bool] = ContextVar("parley_http_patient", default=False)


def backoff_delay(failures: int) -> float:
    """Seconds to wait after `failures` failed tries in a row: doubling from 0.1 s up to
    `MAX_BACKOFF_SECONDS`, with jitter so that many clients do not retry in step."""
    delay: float = min(MAX_BACKOFF_SECONDS, 0.05 * 2.0 ** min(failures, 10))
    return delay * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not a secret)


@contextmanager
def patiently() -> Iterator[None]:
    """Within the block (in this task), requests that cannot reach the server are
    retried with backoff. Every write the SDK makes carries its client-chosen id
    (message, instrument), so a request repeated after a lost answer lands once."""
    token = _patient.set(True)
    try:
        yield
    finally:
        _patient.reset(token)


def raise_for_error(response: httpx.Response) -> None:
    """Raise the typed `APIError` for an error answer."""
    if response.is_success:
        return
    code, message = "error", response.reason_phrase or "request failed"
    request_id = response.headers.get("x-request-id")
    try:
        body = parse_answer(ErrorBody, response.content, what="error answer")
        code, message = body.error.code, body.error.message
        request_id = body.error.request_id or request_id
    except ProtocolError:
        pass  # not our error body (a proxy's page, say): the status still says it
    raise api_error(response.status_code, code, message, request_id)


class HttpSession:
    """Requests to one deployment (one URL, or several replicas' in order of preference)
    as one device."""

    def __init__(
        self,
        server: str | Sequence[str],
        *,
        device_id: str | None = None,
        device_key: SigningKey | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.servers = server_urls([server] if isinstance(server, str) else server)
        """The URLs, the preferred first (`ProtocolError` at construction if none is
        an http(s) URL)."""
        self.failovers = 0
        """How many times the session moved to the next URL."""
        self._current = 0
        self.device_id = device_id
        self.device_key = device_key
        # TLS settings only where some URL is https: httpx's default context loads the CA
        # bundle (about 30 ms of CPU), a cost every command paid for plain-http servers.
        tls = any(url.startswith("https://") for url in self.servers)
        self._client = httpx.AsyncClient(
            base_url=self.server,
            transport=transport,
            timeout=timeout,
            verify=tls,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
        )
        self._token: str | None = None
        self._token_expires_at = 0

    @property
    def server(self) -> str:
        """The URL requests go to now."""
        return self.servers[self._current]

    def fail_over(self, failed: str) -> str:
        """`failed` did not answer: move to the next URL if it is still the current one
        (requests failing together move once); the URL current now."""
        if failed == self.server and len(self.servers) > 1:
            self._current = (self._current + 1) % len(self.servers)
            self._client.base_url = httpx.URL(self.server)
            self.failovers += 1
        return self.server

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def tried(self, last: str, failures: int) -> str:
        """The URLs `failures` failures in a row ending at `last` went to, for an error
        message: `last`, or all of them once every one failed."""
        return last if failures < len(self.servers) else ", ".join(self.servers)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        failures = 0
        reconnected = False
        while True:
            if self._client.is_closed:
                raise ClientClosedError("the client is closed")
            server = self.server
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if (
                    isinstance(exc, httpx.RemoteProtocolError)
                    and method in REPEATABLE_METHODS
                    and not reconnected
                ):
                    # Most likely a kept-alive connection the server closed as this
                    # request went out: once more on a new connection, same URL.
                    reconnected = True
                    continue
                failed: httpx.HTTPError | httpx.Response = exc
            else:
                if response.status_code not in FAILOVER_STATUSES:
                    return response
                failed = response
            failures += 1
            self.fail_over(server)
            if _patient.get():
                again = failures < PATIENT_ATTEMPTS
            else:
                safe = isinstance(failed, _UNSENT) or method in REPEATABLE_METHODS
                again = safe and failures < len(self.servers)
            if not again:
                tried = self.tried(server, failures)
                if isinstance(failed, httpx.Response):
                    raise TransportError(
                        f"cannot reach the server behind {tried}: the gateway answered "
                        f"{failed.status_code} {failed.reason_phrase}"
                    )
                raise TransportError(f"cannot reach {tried}: {failed}") from failed
            if failures % len(self.servers) == 0:  # every URL failed: wait before the next round
                await asyncio.sleep(backoff_delay(failures // len(self.servers)))

    async def login(self) -> str:
        """Log in with the device key and keep the bearer token.

        A login whose answer was lost (a replica died, a gateway failed) starts again
        from a new challenge on the next URL, until each has had its turn: a challenge
        and its token are worth nothing to anyone else, so no second login can harm.
        """
        if self.device_id is None or self.device_key is None:
            raise AuthenticationError(401, "unauthenticated", "no device key to log in with")
        for attempt in range(1, len(self.servers) + 1):
            try:
                return await self._login(self.device_id, self.device_key)
            except TransportError:
                if attempt == len(self.servers):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _login(self, device_id: str, device_key: SigningKey) -> str:
        response = await self._send("POST", "/v1/auth/challenge", json={"device_id": device_id})
        raise_for_error(response)
        nonce = parse_answer(ChallengeResponse, response.content, what="login challenge").nonce
        signature = device_key.sign(SigLabel.LOGIN, login_payload(device_id, nonce))
        response = await self._send(
            "POST",
            "/v1/auth/token",
            json={"device_id": device_id, "nonce": nonce, "signature": b64e(signature)},
        )
        raise_for_error(response)
        answer = parse_answer(TokenResponse, response.content, what="login token")
        self._token, self._token_expires_at = answer.token, answer.expires_at
        return self._token

    async def token(self) -> str:
        """A bearer token valid for at least another minute (none once closed: a stream
        reconnecting after `aclose` stops here)."""
        if self._client.is_closed:
            raise ClientClosedError("the client is closed")
        now = time.time_ns() // 1_000_000
        if self._token is None or self._token_expires_at - now < TOKEN_MARGIN_MS:
            return await self.login()
        return self._token

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> Any:
        """Send a request and return the decoded JSON answer (None for 204).

        The SDK itself reads answers through `call` and `call_list`, which parse
        them into their models; this raw form is for scripts and tests.
        """
        response = await self._answer(method, path, json=json, params=params, auth=auth)
        if response.status_code == 204 or not response.content:
            return None
        return load_json(response.content, what=f"{method} {path}")

    async def _answer(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: dict[str, Any] | None,
        auth: bool,
        content: bytes | None = None,
    ) -> httpx.Response:
        """The successful answer to a request (logging in again once if refused)."""
        body: dict[str, Any] = {"json": json} if content is None else {"content": content}
        headers = {"Authorization": f"Bearer {await self.token()}"} if auth else {}
        response = await self._send(method, path, params=params, headers=headers, **body)
        if auth and response.status_code == 401:
            headers = {"Authorization": f"Bearer {await self.login()}"}
            response = await self._send(method, path, params=params, headers=headers, **body)
        raise_for_error(response)
        return response

    async def put_bytes(self, model: type[M], path: str, content: bytes) -> M:
        """PUT a raw body (a document chunk) and parse the answer into `model`."""
        response = await self._answer(
            "PUT", path, json=None, params=None, auth=True, content=content
        )
        return parse_answer(model, response.content, what=f"PUT {path}")

    @asynccontextmanager
    async def download(self, path: str) -> AsyncIterator[tuple[int | None, AsyncIterator[bytes]]]:
        """GET a binary answer as a stream: its declared length and its bytes in pieces."""
        if self._client.is_closed:
            raise ClientClosedError("the client is closed")
        relogin = False
        failures = 0
        while True:
            token = await (self.login() if relogin else self.token())
            server = self.server
            request = self._client.build_request(
                "GET", path, headers={"Authorization": f"Bearer {token}"}
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                failures += 1
                self.fail_over(server)
                if failures < len(self.servers):
                    continue  # a GET: the next URL may serve it
                raise TransportError(f"cannot reach {self.tried(server, failures)}: {exc}") from exc
            try:
                if response.status_code == 401 and not relogin:
                    relogin = True
                    continue
                if not response.is_success:
                    await response.aread()
                    raise_for_error(response)
                length = response.headers.get("content-length")
                yield (
                    int(length) if length is not None and length.isdigit() else None,
                    _pieces(response, self.server),
                )
                return
            finally:
                await response.aclose()

    async def call(
        self,
        model: type[M],
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> M:
        """Send a request and parse its answer into `model` (else `ProtocolError`)."""
        response = await self._answer(method, path, json=json, params=params, auth=auth)
        return parse_answer(model, response.content, what=f"{method} {path}")

    async def text(self, path: str, *, params: dict[str, Any] | None = None) -> str:
        """GET a ``text/plain`` answer (a signed checkpoint note) as text."""
        response = await self._answer("GET", path, json=None, params=params, auth=True)
        try:
            return response.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"GET {path}: the answer is not UTF-8 text") from exc

    async def call_list(
        self, model: type[M], method: str, path: str, *, params: dict[str, Any] | None = None
    ) -> list[M]:
        """Send a request and parse its answer into a list of `model`."""
        response = await self._answer(method, path, json=None, params=params, auth=True)
        return parse_answers(model, response.content, what=f"{method} {path}")


async def _pieces(response: httpx.Response, server: str) -> AsyncIterator[bytes]:
    try:
        async for piece in response.aiter_bytes():
            yield piece
    except httpx.HTTPError as exc:
        raise TransportError(f"download from {server} broke off: {exc}") from exc
