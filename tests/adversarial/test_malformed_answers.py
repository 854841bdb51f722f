"""Malformed server answers are one `ProtocolError` (or another `ParleyError`), never a
`KeyError`, `TypeError` or `JSONDecodeError`, and never verified.

Each case mangles one route's answers (every answer on it) in one way and runs
the public SDK calls that read that route on a fresh client; the call must
raise a `ParleyError`. A mangling that leaves an answer unchanged must leave the
call working. The WebSocket stream gets the same treatment from a local stream
server that sends garbage frames, or real batches mangled.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from websockets.asyncio.server import ServerConnection, serve

from client_sdk.client import ParleyClient
from client_sdk.protocol.errors import ParleyError
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import Action
from server.app import create_app
from server.config import Settings
from server.services.identity import IdentityService
from tests.adversarial.conftest import open_room
from tests.conftest import BASE_URL, PASSPHRASE, TEST_SCRYPT_N
from tests.support.attacks import account_id

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one app and stage for the module

Mangle = Callable[[bytes], bytes]


# --- manglings ------------------------------------------------------------------------


def _json(edit: Callable[[Any], Any]) -> Mangle:
    def mangle(body: bytes) -> bytes:
        answer = json.loads(body)
        edited = edit(answer)
        return body if edited == answer else json.dumps(edited).encode()

    return mangle


def _walk(value: Any, leaf: Callable[[Any], Any], obj: Callable[[dict[str, Any]], Any]) -> Any:
    """`value` with `leaf` applied to every scalar and `obj` to every object, bottom up."""
    if isinstance(value, dict):
        return obj({k: _walk(v, leaf, obj) for k, v in value.items()})
    if isinstance(value, list):
        return [_walk(v, leaf, obj) for v in value]
    return leaf(value)


def _same(value: Any) -> Any:
    return value


def _drop_first(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(list(obj.items())[1:])


def _int_as_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _str_as_int(value: Any) -> Any:
    return 12345 if isinstance(value, str) else value


def _lists_as_objects(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists_as_objects(v) for k, v in value.items()}
    if isinstance(value, list):
        return {"items": [_lists_as_objects(v) for v in value]}
    return value


def _nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return dict.fromkeys(value)
    if isinstance(value, list):
        return [None for _ in value]
    return None


MANGLINGS: dict[str, Mangle] = {
    "truncated": lambda body: body[: len(body) // 2],
    "not-json": lambda _body: b"<html>502 Bad Gateway</html>",
    "empty-object": _json(lambda _answer: {}),
    "extra-nesting": _json(lambda answer: {"data": answer}),
    "wrapped-in-list": _json(lambda answer: [answer]),
    "first-field-dropped": _json(lambda answer: _walk(answer, _same, _drop_first)),
    "ints-as-strings": _json(lambda answer: _walk(answer, _int_as_str, _same)),
    "strings-as-numbers": _json(lambda answer: _walk(answer, _str_as_int, _same)),
    "lists-as-objects": _json(_lists_as_objects),
    "nulls": _json(_nulls),
}


class ManglingServer(httpx.AsyncBaseTransport):
    """The real app behind a transport that mangles the successful answers of one route."""

    def __init__(self, app: FastAPI, method: str, pattern: str, mangle: Mangle) -> None:
        self._upstream = httpx.ASGITransport(app=app)
        self._method = method
        self._pattern = re.compile(pattern)
        self._mangle = mangle
        self.mangled = 0
        """How many answers the mangling changed."""
        self.matched = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Ask the app; mangle the answer if the route matches and it succeeded."""
        response = await self._upstream.handle_async_request(request)
        route = request.method == self._method and self._pattern.fullmatch(request.url.path)
        if not route or not response.is_success:
            return response
        self.matched += 1
        body = await response.aread()
        mangled = self._mangle(body)
        if mangled == body:
            return response
        self.mangled += 1
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(
            response.status_code, headers=headers, content=mangled, request=request
        )

    async def aclose(self) -> None:
        """Close the upstream transport."""
        await self._upstream.aclose()


# --- the stage ------------------------------------------------------------------------


@dataclass
class Stage:
    """Mona mediates a room with Alice and Dana (side a) and Bob (side b); Bob wrote once.

    Dana's profile names the local stream server as its server: her HTTP goes to
    the app in-process, her WebSocket to `StreamServer`.
    """

    app: FastAPI
    identity: IdentityService
    home: Path
    mediator: ParleyClient
    alice: ParleyClient
    bob: ParleyClient
    dana: ParleyClient
    room_id: str
    stream: StreamServer
    clients: list[ParleyClient]

    def behind(self, client: ParleyClient, transport: httpx.AsyncBaseTransport) -> ParleyClient:
        """A fresh client (nothing verified in memory) on `client`'s profile."""
        fresh = ParleyClient(client.keystore, transport=transport)
        self.clients.append(fresh)
        return fresh

    async def enroll(self, name: str, transport: httpx.AsyncBaseTransport) -> ParleyClient:
        """A new party enrolled over `transport`."""
        client = await _enrolled(self.identity, self.home, name, transport)
        self.clients.append(client)
        return client

    async def new_room(self) -> str:
        """A room of Mona's with Alice on side a (for calls that change a room)."""
        room = await self.mediator.create_room("Side talks")
        await self.mediator.add_member(room.room_id, account_id(self.alice), Side.A)
        return room.room_id


Frames = Callable[[dict[str, Any]], list[str | bytes]]
"""What the stream server sends, made from the real batch frame."""


class StreamServer:
    """A stand-in for the server's event stream: on each connection Bob writes once,
    and the batch the real server would send for it goes out through `frames`."""

    def __init__(self) -> None:
        self.frames: Frames = lambda batch: [json.dumps({"type": "ready"}), json.dumps(batch)]
        self.bob: ParleyClient | None = None
        self.connections = 0

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one connection, then hold it open."""
        assert self.bob is not None
        self.connections += 1
        url = urlsplit(ws.request.path if ws.request else "")
        room_id = url.path.split("/")[3]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        await self.bob.send(room_id, f"Offer {uuid.uuid4().hex}")
        page = await self.bob.http.request(
            "GET",
            f"/v1/rooms/{room_id}/events",
            params={"after": query["after"], "since": query["since"]},
        )
        for frame in self.frames({"type": "batch", **page}):
            await ws.send(frame)
        await ws.wait_closed()


async def _enrolled(
    identity: IdentityService,
    home: Path,
    name: str,
    transport: httpx.AsyncBaseTransport,
    *,
    role: Role = Role.PARTY,
    server: str = BASE_URL,
) -> ParleyClient:
    ticket = await identity.create_enrollment(role=role, name=name)
    return await ParleyClient.enroll(
        server=server,
        token=ticket.token,
        home=home / uuid.uuid4().hex,
        passphrase=PASSPHRASE,
        transport=transport,
        scrypt_n=TEST_SCRYPT_N,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stage]:
    """The app (SQLite), its people and room, and the stream stand-in, for the module."""
    root = tmp_path_factory.mktemp("malformed")
    settings = Settings(
        data_dir=root / "server",
        database_url=f"sqlite+aiosqlite:///{root / 'parley.db'}",
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
    )
    app = create_app(settings)
    stream = StreamServer()
    async with app.router.lifespan_context(app), serve(stream.handle, "127.0.0.1", 0) as ws:
        port = ws.sockets[0].getsockname()[1]
        identity: IdentityService = app.state.services.identity

        def direct() -> httpx.AsyncBaseTransport:
            return httpx.ASGITransport(app=app)

        mediator = await _enrolled(identity, root, "Mona", direct(), role=Role.MEDIATOR)
        alice = await _enrolled(identity, root, "Alice", direct())
        bob = await _enrolled(identity, root, "Bob", direct())
        dana = await _enrolled(identity, root, "Dana", direct(), server=f"http://127.0.0.1:{port}")
        room_id = await open_room(mediator, a=[alice, dana], b=[bob])
        await bob.send(room_id, "We need three for one.")
        made = Stage(
            app,
            identity,
            root,
            mediator,
            alice,
            bob,
            dana,
            room_id,
            stream,
            [mediator, alice, bob, dana],
        )
        stream.bob = made.bob
        yield made
        for client in made.clients:
            await client.aclose()


async def _enroll(stage: Stage, transport: ManglingServer) -> object:
    return (await stage.enroll("Carol", transport)).whoami()


async def _read(client: ParleyClient, room_id: str) -> list[str]:
    return [m.text async for m in client.messages(room_id)]


async def _send_after_others_wrote(stage: Stage, transport: ManglingServer) -> object:
    alice = stage.behind(stage.alice, transport)
    await _read(alice, stage.room_id)  # a checkpoint to be consistent with, later
    await stage.bob.send(stage.room_id, "Still three for one.")
    return await alice.send(stage.room_id, "Two for one.")


async def _change_roster(stage: Stage, transport: ManglingServer) -> object:
    room_id = await stage.new_room()
    return await stage.behind(stage.mediator, transport).set_policy(room_id, witness_quorum=0)


async def _moderate(stage: Stage, transport: ManglingServer) -> object:
    room_id = await stage.new_room()
    return await stage.behind(stage.mediator, transport).moderate(room_id, Action.LOCK)


Scenario = Callable[[Stage, ManglingServer], Awaitable[object]]

ROOM = r"/v1/rooms/[0-9a-f]+"
LOG = r"/v1/logs/[A-Za-z0-9_-]+"
ROUTES: dict[str, tuple[str, str, Scenario]] = {
    "enroll-preview": ("POST", "/v1/enroll/preview", _enroll),
    "enroll": ("POST", "/v1/enroll", _enroll),
    "challenge": ("POST", "/v1/auth/challenge", lambda s, t: s.behind(s.alice, t).token()),
    "token": ("POST", "/v1/auth/token", lambda s, t: s.behind(s.alice, t).token()),
    "account": (
        "GET",
        r"/v1/accounts/[A-Za-z0-9_-]+",
        lambda s, t: s.behind(s.alice, t).account(account_id(s.bob)),
    ),
    "accounts": ("GET", "/v1/accounts", lambda s, t: s.behind(s.alice, t).accounts()),
    "invite": (
        "POST",
        "/v1/enrollment-tokens",
        lambda s, t: s.behind(s.mediator, t).invite("Carol"),
    ),
    "rotate-key": (
        "POST",
        "/v1/devices/me/encryption-keys",
        lambda s, t: s.behind(s.alice, t).rotate_encryption_key(),
    ),
    "create-room": ("POST", "/v1/rooms", lambda s, t: s.behind(s.mediator, t).create_room("Side")),
    "rooms": ("GET", "/v1/rooms", lambda s, t: s.behind(s.alice, t).rooms()),
    "room": ("GET", ROOM, lambda s, t: s.behind(s.alice, t).room(s.room_id)),
    "roster-change": ("POST", f"{ROOM}/rosters", _change_roster),
    "roster-version": (
        "GET",
        rf"{ROOM}/rosters/\d+",
        lambda s, t: s.behind(s.alice, t).send(s.room_id, "Hi"),
    ),
    "send": ("POST", f"{ROOM}/messages", lambda s, t: s.behind(s.alice, t).send(s.room_id, "Hi")),
    "moderate": ("POST", f"{ROOM}/moderation", _moderate),
    "events": ("GET", f"{ROOM}/events", lambda s, t: _read(s.behind(s.alice, t), s.room_id)),
    "log": ("GET", LOG, lambda s, t: _read(s.behind(s.alice, t), s.room_id)),
    "consistency": ("GET", f"{LOG}/proof/consistency", _send_after_others_wrote),
}


@pytest.mark.parametrize("mangling", sorted(MANGLINGS))
@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_a_mangled_answer_is_a_parley_error(stage: Stage, route: str, mangling: str) -> None:
    method, pattern, scenario = ROUTES[route]
    server = ManglingServer(stage.app, method, pattern, MANGLINGS[mangling])

    try:
        await asyncio.wait_for(scenario(stage, server), timeout=60)
    except ParleyError:
        assert server.mangled, "the call failed on an answer that was not mangled"
        return
    assert server.matched, f"the scenario never asked {method} {pattern}"
    assert not server.mangled, "a mangled answer was accepted"


# --- the WebSocket stream -------------------------------------------------------------


def _as_frames(mangle: Mangle) -> Frames:
    def frames(batch: dict[str, Any]) -> list[str | bytes]:
        return [json.dumps({"type": "ready"}), mangle(json.dumps(batch).encode()).decode()]

    return frames


FRAMES: dict[str, Frames] = {
    **{f"batch-{name}": _as_frames(mangle) for name, mangle in MANGLINGS.items()},
    "binary-frame": lambda _batch: [json.dumps({"type": "ready"}), b"\x00\x01garbage"],
    "unknown-frame-type": lambda _batch: [json.dumps({"type": "ready"}), '{"type": "party"}'],
    "untyped-batch": lambda batch: [
        json.dumps({"type": "ready"}),
        json.dumps({k: v for k, v in batch.items() if k != "type"}),
    ],
    "batch-before-ready": lambda batch: [json.dumps(batch)],
    "event-seq-as-string": lambda batch: [
        json.dumps({"type": "ready"}),
        json.dumps({**batch, "events": [{**e, "seq": str(e["seq"])} for e in batch["events"]]}),
    ],
    "events-dropped": lambda batch: [
        json.dumps({"type": "ready"}),
        json.dumps({**batch, "events": [{"seq": e["seq"]} for e in batch["events"]]}),
    ],
}


async def _follow_one(client: ParleyClient, room_id: str) -> str:
    """Read the room to its end, then follow the stream for one new message."""
    last = [m.seq async for m in client.messages(room_id)][-1]
    async for message in client.messages(room_id, after=last, follow=True):
        return message.text
    raise AssertionError("the stream ended")


async def test_an_honest_stream_delivers(stage: Stage) -> None:
    """The stand-in's batches, unmangled, are read like the real server's."""
    stage.stream.frames = _as_frames(lambda body: body)
    dana = stage.behind(stage.dana, httpx.ASGITransport(app=stage.app))

    text = await asyncio.wait_for(_follow_one(dana, stage.room_id), timeout=60)

    assert text.startswith("Offer ")


@pytest.mark.parametrize("frames", sorted(FRAMES))
async def test_a_mangled_stream_frame_is_a_parley_error(stage: Stage, frames: str) -> None:
    stage.stream.frames = FRAMES[frames]
    dana = stage.behind(stage.dana, httpx.ASGITransport(app=stage.app))
    connections = stage.stream.connections

    with pytest.raises(ParleyError):
        await asyncio.wait_for(_follow_one(dana, stage.room_id), timeout=60)
    assert stage.stream.connections == connections + 1
