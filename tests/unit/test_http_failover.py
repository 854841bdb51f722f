"""Which failures move an `HttpSession` to its next URL, and which requests go again.

Real HTTP on local sockets: a replica (records what reached it, answers 200, or
the 404 error body for an unknown path), a gateway in front of a dead server
(answers every request 502, 503 or 504), and a port nobody listens on. The
whole failover, with real replicas killed mid-stream, is tests/e2e/test_failover.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from client_sdk.client.http import HttpSession
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import NotFoundError, ProtocolError, TransportError
from client_sdk.protocol.keys import SigningKey
from tests.support.server import free_port

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Replica:
    """An ASGI app answering ``{"ok": true}`` (404 under /missing), or `status` to all."""

    status: int = 200
    token_status: int | None = None
    """The answer to a login's token request, if not `status` (a gateway losing it)."""
    reached: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.reached.append((scope["method"], scope["path"]))
        status = self.status
        body: dict[str, Any] = {"ok": True}
        if scope["path"] == "/v1/auth/challenge":
            body = {"nonce": b64e(os.urandom(32)), "expires_at": 2**50}
        elif scope["path"] == "/v1/auth/token":
            status = self.token_status or status
            body = {"token": f"token-{len(self.reached)}", "expires_at": 2**50}
        if status == 200 and scope["path"].startswith("/missing"):
            status, body = 404, {"error": {"code": "not_found", "message": "no such thing"}}
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@dataclass
class Deployment:
    """URLs: `up` and `other` (two replicas), `gateway` (status set per test), `down`."""

    up: str
    other: str
    gateway: str
    down: str
    replicas: dict[str, Replica]


@pytest.fixture
async def deployment() -> AsyncIterator[Deployment]:
    apps = {"up": Replica(), "other": Replica(), "gateway": Replica(status=503)}
    servers, tasks, urls = [], [], {}
    for name, app in apps.items():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        servers.append((server, sock))
        tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        urls[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield Deployment(
            urls["up"], urls["other"], urls["gateway"], f"http://127.0.0.1:{free_port()}", apps
        )
    finally:
        for server, _ in servers:
            server.should_exit = True
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        for _, sock in servers:
            sock.close()


def _session(*servers: str) -> HttpSession:
    return HttpSession(list(servers))


async def test_a_request_no_server_took_goes_to_the_next_url_and_stays_there(
    deployment: Deployment,
) -> None:
    http = _session(deployment.down, deployment.up, deployment.other)

    assert await http.request("POST", "/v1/things", auth=False) == {"ok": True}
    assert await http.request("GET", "/v1/things", auth=False) == {"ok": True}

    assert (http.server, http.failovers) == (deployment.up, 1)
    assert deployment.replicas["up"].reached == [("POST", "/v1/things"), ("GET", "/v1/things")]
    assert deployment.replicas["other"].reached == []
    await http.aclose()


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_gateway_error_repeats_a_read_on_the_next_url(
    deployment: Deployment, status: int
) -> None:
    deployment.replicas["gateway"].status = status
    http = _session(deployment.gateway, deployment.up)

    assert await http.request("GET", "/v1/things", auth=False) == {"ok": True}
    assert http.server == deployment.up
    await http.aclose()


async def test_a_write_a_gateway_may_have_passed_on_is_not_repeated_but_the_next_goes_on(
    deployment: Deployment,
) -> None:
    http = _session(deployment.gateway, deployment.up)

    with pytest.raises(TransportError, match="the gateway answered 503"):
        await http.request("POST", "/v1/things", auth=False)

    assert deployment.replicas["up"].reached == []  # the caller repeats it, under its id
    assert http.server == deployment.up
    assert await http.request("POST", "/v1/things", auth=False) == {"ok": True}
    await http.aclose()


async def test_a_login_whose_token_answer_was_lost_starts_again_on_the_next_url(
    deployment: Deployment,
) -> None:
    deployment.replicas["other"].token_status = 503  # the challenge passes, the token is lost
    http = HttpSession(
        [deployment.other, deployment.up], device_id="dev", device_key=SigningKey.generate()
    )

    assert await http.token() == "token-2"  # the second request that replica saw
    assert deployment.replicas["other"].reached == [
        ("POST", "/v1/auth/challenge"),
        ("POST", "/v1/auth/token"),
    ]
    assert deployment.replicas["up"].reached == [
        ("POST", "/v1/auth/challenge"),
        ("POST", "/v1/auth/token"),
    ]
    assert (http.server, http.failovers) == (deployment.up, 1)
    await http.aclose()


async def test_a_login_stops_once_every_url_lost_it(deployment: Deployment) -> None:
    http = HttpSession(
        [deployment.gateway, deployment.down], device_id="dev", device_key=SigningKey.generate()
    )

    with pytest.raises(TransportError):
        await http.token()
    assert set(deployment.replicas["gateway"].reached) == {("POST", "/v1/auth/challenge")}
    await http.aclose()


async def test_a_refusal_is_the_servers_verdict_and_moves_nothing(
    deployment: Deployment,
) -> None:
    http = _session(deployment.up, deployment.other)

    with pytest.raises(NotFoundError, match="no such thing"):
        await http.request("GET", "/missing", auth=False)

    assert (http.server, http.failovers) == (deployment.up, 0)
    assert deployment.replicas["other"].reached == []
    await http.aclose()


async def test_when_every_url_fails_the_error_names_them_all(deployment: Deployment) -> None:
    http = _session(deployment.down, deployment.gateway)

    with pytest.raises(TransportError) as failed:
        await http.request("GET", "/v1/things", auth=False)

    assert f"{deployment.down}, {deployment.gateway}" in str(failed.value)
    await http.aclose()


async def test_one_url_behaves_as_before_failover(deployment: Deployment) -> None:
    http = _session(deployment.down)

    with pytest.raises(TransportError, match=f"cannot reach {deployment.down}"):
        await http.request("GET", "/v1/things", auth=False)

    assert (http.servers, http.failovers) == ((deployment.down,), 0)
    await http.aclose()


@pytest.mark.parametrize("url", ["ftp://a.example", "a.example:8000", ""])
def test_a_url_that_is_not_http_is_refused_at_once(url: str) -> None:
    with pytest.raises(ProtocolError, match="http:// or https://"):
        HttpSession([url])
