"""Machinery for the authorization matrix in `test_authorization.py`.

A `Scene` holds one caller of every kind (`Who`) around two rooms; each
`Operation` is one route plus an attempt that builds a request valid for the
caller (signed by its own keys, addressed to the current roster), so that a
refusal comes from authorization, never from bad input. `perform` runs a
prepared request over HTTP or, for the event stream, through an in-process
ASGI WebSocket client.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from starlette.types import Message

from client_sdk.protocol.documents import DocumentContent, seal_document
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import Recipient, seal_envelope
from client_sdk.protocol.instruments.acts import sign_act
from client_sdk.protocol.instruments.receipts import ReceiptAct
from client_sdk.protocol.instruments.rounds import RoundOpenAct
from client_sdk.protocol.keys import EncryptionKey, SigLabel
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.mediation import channel_devices
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.note import SIG_COSIGNATURE_V1, Checkpoint, cosign, format_verifier_key
from client_sdk.protocol.statements import (
    Action,
    Mode,
    Moderation,
    Revocation,
    Roster,
    SignedStatement,
    login_payload,
    parse_statement,
    sign_statement,
)
from server.services.identity import IdentityService
from server.storage.accounts import AccountRepository
from tests.api.factories import (
    Actor,
    Json,
    Keys,
    create_room,
    create_room_body,
    device_cert,
    dump,
    encryption_key_cert,
    enroll_actor,
    enrollment_body,
    login,
    now_ms,
    publish_roster,
)

WS_TIMEOUT = 5.0


class Who(enum.StrEnum):
    """The kinds of caller every operation is tried as."""

    MEDIATOR = "mediator"
    PARTY_A = "party-a"
    PARTY_B = "party-b"
    OBSERVER = "observer"
    AUDITOR = "auditor"
    """An auditor account a mediator granted the room's log (`Action.GRANT_AUDITOR`)."""
    OUTSIDER = "outsider"
    """An enrolled party that is in no room."""
    ANONYMOUS = "anonymous"
    """No credentials at all."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a request: the keys that sign its body, and its bearer token if any."""

    who: Who
    actor: Actor
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header, or none for an anonymous caller."""
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class Scene:
    """Mona mediates Alice (a) and Bob (b) with Olga observing, in an open room with
    both caucuses open and in a shuttle-mode room; Audrey audits the open room's log
    and runs a registered witness; Eve is enrolled and in no room."""

    app: FastAPI
    http: httpx.AsyncClient
    open_room: str
    shuttle_room: str
    actors: dict[Who, Actor]
    witness_name: str
    witness_key: Ed25519PrivateKey

    @property
    def identity(self) -> IdentityService:
        """The operator's path to enrollment tokens."""
        service: IdentityService = self.app.state.services.identity
        return service

    @property
    def mediator(self) -> Actor:
        """The rooms' mediator."""
        return self.actors[Who.MEDIATOR]

    def caller(self, who: Who) -> Caller:
        """`who` as a caller. An anonymous caller signs with the mediator's keys, so its
        bodies are ones the server would accept from the mediator: only the missing
        credentials can be why it is refused."""
        if who is Who.ANONYMOUS:
            return Caller(who, self.mediator, None)
        actor = self.actors[who]
        return Caller(who, actor, actor.token)

    async def roster(self, room_id: str) -> tuple[SignedStatement, Roster]:
        """The room's current roster, as its mediator reads it."""
        response = await self.http.get(f"/v1/rooms/{room_id}", headers=self.mediator.headers)
        assert response.status_code == 200, response.text
        signed = SignedStatement.model_validate(response.json()["roster"])
        return signed, parse_statement(signed, Roster)

    def recipients(self, roster: Roster, channel: str) -> list[Recipient]:
        """The devices of `channel` at `roster`, with their encryption keys."""
        by_device = {a.device_id: a for a in self.actors.values()}
        return [by_device[d].recipient() for d in channel_devices(roster, channel)]


async def build_scene(app: FastAPI, http: httpx.AsyncClient) -> Scene:
    """Enroll every caller and set up both rooms through the API."""
    identity: IdentityService = app.state.services.identity
    names = {
        Who.MEDIATOR: (Role.MEDIATOR, "Mona"),
        Who.PARTY_A: (Role.PARTY, "Alice"),
        Who.PARTY_B: (Role.PARTY, "Bob"),
        Who.OBSERVER: (Role.PARTY, "Olga"),
        Who.AUDITOR: (Role.AUDITOR, "Audrey"),
        Who.OUTSIDER: (Role.PARTY, "Eve"),
    }
    actors = {
        who: await enroll_actor(http, identity, role=role, name=name)
        for who, (role, name) in names.items()
    }
    mediator, observer = actors[Who.MEDIATOR], actors[Who.OBSERVER]

    async def seat_everyone() -> str:
        room = await create_room(http, mediator, actors[Who.PARTY_A], actors[Who.PARTY_B])
        await publish_roster(http, room, [*room.seated, (observer, Side.OBSERVER)])
        return room.room_id

    open_room, shuttle_room = await seat_everyone(), await seat_everyone()
    await moderate(http, mediator, open_room, Action.OPEN_CAUCUS, side="a")
    await moderate(http, mediator, open_room, Action.OPEN_CAUCUS, side="b")
    await moderate(
        http, mediator, open_room, Action.GRANT_AUDITOR, account_id=actors[Who.AUDITOR].account_id
    )
    await moderate(http, mediator, shuttle_room, Action.SET_MODE, mode=Mode.SHUTTLE)

    witness_key = Ed25519PrivateKey.generate()
    witness_name = "witness.audrey.test"
    response = await http.post(
        "/v1/witnesses",
        json={"vkey": _witness_vkey(witness_name, witness_key)},
        headers=actors[Who.AUDITOR].headers,
    )
    assert response.status_code == 201, response.text
    return Scene(app, http, open_room, shuttle_room, actors, witness_name, witness_key)


def moderation_act(
    signer: Actor, room_id: str, roster_version: int, action: Action, **fields: Any
) -> SignedStatement:
    """A moderation act signed by `signer`'s device."""
    act = Moderation(
        room_id=room_id,
        moderation_id=uuid.uuid4().hex,
        action=action,
        roster_version=roster_version,
        signer_device=signer.device_id,
        issued_at=now_ms(),
        **fields,
    )
    return sign_statement(signer.keys.device_key, act)


async def moderate(
    http: httpx.AsyncClient, mediator: Actor, room_id: str, action: Action, **fields: Any
) -> None:
    """Apply a mediator's act at the room's current roster version."""
    room = await http.get(f"/v1/rooms/{room_id}", headers=mediator.headers)
    assert room.status_code == 200, room.text
    signed = moderation_act(mediator, room_id, room.json()["roster_version"], action, **fields)
    response = await http.post(
        f"/v1/rooms/{room_id}/moderation",
        json={"statement": dump(signed)},
        headers=mediator.headers,
    )
    assert response.status_code == 201, response.text


def _witness_vkey(name: str, key: Ed25519PrivateKey) -> str:
    return format_verifier_key(name, key.public_key().public_bytes_raw(), SIG_COSIGNATURE_V1)


# --- requests and answers -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One prepared HTTP request, or (method ``WS``) one WebSocket connection."""

    method: str
    path: str
    headers: dict[str, str]
    json: Json | None = None
    first_frame: Json | None = None
    content: bytes | None = None
    """A raw body (a document chunk), sent instead of `json`."""
    """WebSocket only: a frame sent right after connecting."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server did with a request."""

    status: int
    """The HTTP status; for a stream, 101 once it said ready, else the close code."""
    response: httpx.Response | None = None


async def perform(scene: Scene, request: Request) -> Answer:
    """Send a prepared request."""
    if request.method == "WS":
        return Answer(await open_stream(scene.app, request))
    if request.content is not None:
        response = await scene.http.request(
            request.method, request.path, headers=request.headers, content=request.content
        )
    else:
        response = await scene.http.request(
            request.method, request.path, headers=request.headers, json=request.json
        )
    return Answer(response.status_code, response)


async def open_stream(app: FastAPI, request: Request) -> int:
    """Connect to a WebSocket route in process; 101 if it says ``ready``, else its close code.

    A minimal ASGI client: Starlette's TestClient runs the app on its own event
    loop, which the app's database pool (made on the test's loop) cannot serve.
    """
    path, _, query = request.path.partition("?")
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"parley.test")]
        + [(k.lower().encode(), v.encode()) for k, v in request.headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("parley.test", 80),
        "subprotocols": [],
    }
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    if request.first_frame is not None:
        inbox.put_nowait({"type": "websocket.receive", "text": json.dumps(request.first_frame)})
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    try:
        opened = await asyncio.wait_for(outbox.get(), WS_TIMEOUT)
        if opened["type"] == "websocket.close":
            return int(opened.get("code", 1000))
        assert opened["type"] == "websocket.accept", opened
        first = await asyncio.wait_for(outbox.get(), WS_TIMEOUT)
        if first["type"] == "websocket.close":
            return int(first.get("code", 1000))
        assert first["type"] == "websocket.send", first
        assert json.loads(first["text"]) == {"type": "ready"}, first
        return 101
    finally:
        inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, WS_TIMEOUT)


# --- operations ---------------------------------------------------------------------

Prepare = Callable[[Scene, Caller], Awaitable[Request]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One thing a client can do: a route (method and path template as the app
    declares it) and an attempt that prepares it for a caller."""

    method: str
    """HTTP method, or ``WS`` for a WebSocket route."""
    route: str
    prepare: Prepare
    ok: int = 200
    """The status of success (101 for a stream that said ready)."""


def _get(path: Callable[[Scene], str]) -> Prepare:
    async def prepare(scene: Scene, caller: Caller) -> Request:
        return Request("GET", path(scene), caller.headers)

    return prepare


async def _enroll_preview(scene: Scene, caller: Caller) -> Request:
    ticket = await scene.identity.create_enrollment(role=Role.PARTY, name="Nadia")
    return Request("POST", "/v1/enroll/preview", caller.headers, {"token": ticket.token})


async def _enroll(scene: Scene, caller: Caller) -> Request:
    ticket = await scene.identity.create_enrollment(role=Role.PARTY, name="Nadia")
    body = enrollment_body(
        ticket.token, Keys(), account_id=ticket.account_id, name="Nadia", role=Role.PARTY
    )
    return Request("POST", "/v1/enroll", caller.headers, body)


async def _challenge(scene: Scene, caller: Caller) -> Request:
    return Request(
        "POST", "/v1/auth/challenge", caller.headers, {"device_id": caller.actor.device_id}
    )


async def _token(scene: Scene, caller: Caller) -> Request:
    device_id = caller.actor.device_id
    challenge = await scene.http.post("/v1/auth/challenge", json={"device_id": device_id})
    assert challenge.status_code == 200, challenge.text
    nonce = challenge.json()["nonce"]
    signature = caller.actor.keys.device_key.sign(SigLabel.LOGIN, login_payload(device_id, nonce))
    body = {"device_id": device_id, "nonce": nonce, "signature": b64e(signature)}
    return Request("POST", "/v1/auth/token", caller.headers, body)


async def _logout(scene: Scene, caller: Caller) -> Request:
    # Logging out revokes the token it is sent with: spend a fresh one, not the caller's.
    if caller.token is None:
        return Request("POST", "/v1/auth/logout", {})
    token = await login(scene.http, caller.actor.device_id, caller.actor.keys.device_key)
    return Request("POST", "/v1/auth/logout", {"Authorization": f"Bearer {token}"})


async def _invite(scene: Scene, caller: Caller) -> Request:
    return Request("POST", "/v1/enrollment-tokens", caller.headers, {"name": "Nadia"})


async def _rotate(scene: Scene, caller: Caller) -> Request:
    own = caller.actor.keys
    keys = Keys(own.account_key, own.device_key, EncryptionKey.generate())
    cert = encryption_key_cert(keys, account_id=caller.actor.account_id)
    return Request("POST", "/v1/devices/me/encryption-keys", caller.headers, {"cert": dump(cert)})


def _link_body(account_id: str, keys: Keys) -> Json:
    """A new device's link request for `account_id`."""
    return {
        "account_id": account_id,
        "signing_key": b64e(keys.device_key.public_bytes()),
        "encryption_key": b64e(keys.encryption_key.public_bytes()),
    }


async def _new_link(scene: Scene, account_id: str) -> tuple[Json, Keys]:
    """A fresh link request for `account_id` (made without credentials, as a new device)."""
    keys = Keys()
    answer = await scene.http.post("/v1/device-links", json=_link_body(account_id, keys))
    assert answer.status_code == 201, answer.text
    link: Json = answer.json()
    return link, keys


def _approval(caller: Caller, link: Json, keys: Keys) -> Json:
    """What a device of the account sends to approve `link` (the grant is not opened here)."""
    own = caller.actor.keys
    linked = Keys(own.account_key, keys.device_key, keys.encryption_key)
    account_id = caller.actor.account_id
    return {
        "device_cert": dump(device_cert(linked, account_id=account_id)),
        "encryption_key_cert": dump(encryption_key_cert(linked, account_id=account_id)),
        "sealed_account_key": b64e(b"sealed"),
    }


async def _request_link(scene: Scene, caller: Caller) -> Request:
    body = _link_body(caller.actor.account_id, Keys())
    return Request("POST", "/v1/device-links", caller.headers, body)


async def _get_link(scene: Scene, caller: Caller) -> Request:
    link, _ = await _new_link(scene, caller.actor.account_id)
    return Request("GET", f"/v1/device-links/{link['link_id']}", caller.headers)


async def _approve_link(scene: Scene, caller: Caller) -> Request:
    link, keys = await _new_link(scene, caller.actor.account_id)
    path = f"/v1/device-links/{link['link_id']}/approve"
    return Request("POST", path, caller.headers, _approval(caller, link, keys))


async def _revoke_device(scene: Scene, caller: Caller) -> Request:
    """Revoke a second device of the caller's account: the one `_approve_link` left
    (cells run in table order), or one linked here; an anonymous caller's request names
    the actor's own device and is refused before anything is read."""
    account_id = caller.actor.account_id
    device_id = caller.actor.device_id
    if caller.token is not None:
        services = scene.app.state.services
        async with services.identity.database.read() as conn:
            others = [
                d.id
                for d in await AccountRepository(conn).devices_of([account_id])
                if d.id != caller.actor.device_id
            ]
        if not others:
            link, keys = await _new_link(scene, account_id)
            path = f"/v1/device-links/{link['link_id']}/approve"
            answer = await scene.http.post(
                path, json=_approval(caller, link, keys), headers=caller.headers
            )
            assert answer.status_code == 201, answer.text
            others = [link["device_id"]]
        device_id, *rest = others
        for stray in rest:
            await services.devices.operator_revoke(stray)
    statement = Revocation(
        account_id=account_id, device_id=device_id, authority="account", issued_at=now_ms()
    )
    signed = sign_statement(caller.actor.keys.account_key, statement)
    return Request("POST", "/v1/devices/revocations", caller.headers, {"statement": dump(signed)})


async def _create_room(scene: Scene, caller: Caller) -> Request:
    body, _ = create_room_body(caller.actor)
    return Request("POST", "/v1/rooms", caller.headers, body)


async def _publish_roster(scene: Scene, caller: Caller) -> Request:
    room_id = scene.open_room
    signed, current = await scene.roster(room_id)
    following = current.model_copy(
        update={
            "version": current.version + 1,
            "prev_hash": b64e(signed.body_hash()),
            "signer_device": caller.actor.device_id,
            "issued_at": now_ms(),
        }
    )
    statement = sign_statement(caller.actor.keys.device_key, following)
    return Request(
        "POST", f"/v1/rooms/{room_id}/rosters", caller.headers, {"roster": dump(statement)}
    )


def _send(channel: str, *, shuttle: bool = False) -> Prepare:
    async def prepare(scene: Scene, caller: Caller) -> Request:
        room_id = scene.shuttle_room if shuttle else scene.open_room
        _, roster = await scene.roster(room_id)
        envelope = seal_envelope(
            content={"type": "text", "text": f"{caller.who} on {channel}"},
            room_id=room_id,
            channel=channel,
            roster_version=roster.version,
            sender_device=caller.actor.device_id,
            sender_key=caller.actor.keys.device_key,
            recipients=scene.recipients(roster, channel),
            sent_at=now_ms(),
        )
        return Request(
            "POST",
            f"/v1/rooms/{room_id}/messages",
            caller.headers,
            envelope.model_dump(mode="json"),
        )

    return prepare


async def _moderate(scene: Scene, caller: Caller) -> Request:
    # Setting the mode the room already has: a real, logged act that leaves the
    # room as the other cells expect it.
    room_id = scene.open_room
    _, roster = await scene.roster(room_id)
    act = moderation_act(caller.actor, room_id, roster.version, Action.SET_MODE, mode=Mode.OPEN)
    return Request(
        "POST", f"/v1/rooms/{room_id}/moderation", caller.headers, {"statement": dump(act)}
    )


async def _acknowledge(scene: Scene, caller: Caller) -> Request:
    # A receipt for the room's first event: each member acknowledges it once, which
    # changes nothing the other cells look at.
    room_id = scene.open_room
    _, roster = await scene.roster(room_id)
    entries = await scene.http.get(
        f"/v1/logs/{room_id}/entries", params={"start": 0, "end": 1}, headers=scene.mediator.headers
    )
    assert entries.status_code == 200, entries.text
    act = ReceiptAct(
        room_id=room_id,
        instrument_id=uuid.uuid4().hex,
        roster_version=roster.version,
        signer_device=caller.actor.device_id,
        issued_at=now_ms(),
        seq=1,
        leaf_sha256=entries.json()["entries"][0]["leaf_hash"],
        account_id=caller.actor.account_id,
    )
    signed = sign_act(caller.actor.keys.device_key, act)
    return Request(
        "POST", f"/v1/rooms/{room_id}/instruments", caller.headers, {"statement": dump(signed)}
    )


async def _open_offer_round(scene: Scene, caller: Caller) -> Request:
    # A new round each time: rounds are independent, so the other cells see no change.
    room_id = scene.open_room
    _, roster = await scene.roster(room_id)
    instrument_id = uuid.uuid4().hex
    question = seal_envelope(
        content={"type": "offer-question", "question": f"{caller.who}'s question"},
        room_id=room_id,
        channel="plenary",
        roster_version=roster.version,
        sender_device=caller.actor.device_id,
        sender_key=caller.actor.keys.device_key,
        recipients=scene.recipients(roster, "plenary"),
        sent_at=now_ms(),
        message_id=instrument_id,
    )
    act = RoundOpenAct(
        room_id=room_id,
        instrument_id=instrument_id,
        roster_version=roster.version,
        signer_device=caller.actor.device_id,
        issued_at=now_ms(),
        sealed=question,
    )
    signed = sign_act(caller.actor.keys.device_key, act)
    return Request(
        "POST", f"/v1/rooms/{room_id}/instruments", caller.headers, {"statement": dump(signed)}
    )


async def _stream(scene: Scene, caller: Caller) -> Request:
    path = f"/v1/rooms/{scene.open_room}/stream?after=0"
    if caller.token is None:
        # Without a header the server waits for an auth frame; a client that talks
        # without authenticating is refused at once.
        return Request("WS", path, {}, first_frame={"type": "ping"})
    return Request("WS", path, caller.headers)


def _cosign(directory: bool) -> Prepare:
    async def prepare(scene: Scene, caller: Caller) -> Request:
        log_id = DIRECTORY_LOG_ID if directory else scene.open_room
        note = await scene.http.get(f"/v1/logs/{log_id}/checkpoint", headers=scene.mediator.headers)
        assert note.status_code == 200, note.text
        text = note.text.partition("\n\n")[0] + "\n"
        if caller.who is Who.AUDITOR:
            name, key = scene.witness_name, scene.witness_key
        else:  # a witness key of the caller's own, which only an auditor could register
            name, key = f"witness.{caller.who}.test", Ed25519PrivateKey.generate()
        line = cosign(text, name, key, timestamp=int(time.time()))
        body = {"size": Checkpoint.parse(text).size, "cosignature": line}
        return Request("POST", f"/v1/logs/{log_id}/cosignatures", caller.headers, body)

    return prepare


async def _register_witness(scene: Scene, caller: Caller) -> Request:
    name = f"witness-{uuid.uuid4().hex[:12]}.test"
    vkey = _witness_vkey(name, Ed25519PrivateKey.generate())
    return Request("POST", "/v1/witnesses", caller.headers, {"vkey": vkey})


_DOC_CHUNK = 64
_UPLOADERS = (Who.MEDIATOR, Who.PARTY_A, Who.PARTY_B)


async def _upload(
    scene: Scene, caller: Caller, *, chunks: int
) -> tuple[str, DocumentContent, bytes]:
    """An upload in the open room, by the caller if it may upload (else by the mediator,
    so the refusal is about whose upload it is), with its first `chunks` chunks sent."""
    owner = caller.actor if caller.who in _UPLOADERS else scene.mediator
    document, ciphertext = seal_document(
        os.urandom(32),
        os.urandom(100),
        file_id="f",
        name="a.txt",
        media_type="text/plain",
        chunk_size=_DOC_CHUNK,
    )
    base = f"/v1/rooms/{scene.open_room}/uploads"
    created = await scene.http.post(
        base,
        json={"size": 100, "chunk_size": _DOC_CHUNK, "channel": "plenary"},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    step = _DOC_CHUNK + 16
    for index in range(chunks):
        sent = await scene.http.put(
            f"{base}/{upload_id}/chunks/{index}",
            content=ciphertext[index * step : (index + 1) * step],
            headers=owner.headers,
        )
        assert sent.status_code == 200, sent.text
    return upload_id, document, ciphertext


async def _create_upload(scene: Scene, caller: Caller) -> Request:
    body = {"size": 100, "chunk_size": _DOC_CHUNK, "channel": "plenary"}
    return Request("POST", f"/v1/rooms/{scene.open_room}/uploads", caller.headers, body)


async def _upload_status(scene: Scene, caller: Caller) -> Request:
    upload_id, _, _ = await _upload(scene, caller, chunks=0)
    return Request("GET", f"/v1/rooms/{scene.open_room}/uploads/{upload_id}", caller.headers)


async def _upload_chunk(scene: Scene, caller: Caller) -> Request:
    upload_id, _, ciphertext = await _upload(scene, caller, chunks=0)
    path = f"/v1/rooms/{scene.open_room}/uploads/{upload_id}/chunks/0"
    return Request("PUT", path, caller.headers, content=ciphertext[: _DOC_CHUNK + 16])


async def _complete_upload(scene: Scene, caller: Caller) -> Request:
    upload_id, document, _ = await _upload(scene, caller, chunks=2)
    path = f"/v1/rooms/{scene.open_room}/uploads/{upload_id}/complete"
    return Request("POST", path, caller.headers, {"blob": document.blob})


async def _abandon_upload(scene: Scene, caller: Caller) -> Request:
    upload_id, _, _ = await _upload(scene, caller, chunks=1)
    return Request("DELETE", f"/v1/rooms/{scene.open_room}/uploads/{upload_id}", caller.headers)


async def _download_blob(scene: Scene, caller: Caller) -> Request:
    upload_id, document, _ = await _upload(
        scene, Caller(Who.MEDIATOR, scene.mediator, None), chunks=2
    )
    done = await scene.http.post(
        f"/v1/rooms/{scene.open_room}/uploads/{upload_id}/complete",
        json={"blob": document.blob},
        headers=scene.mediator.headers,
    )
    assert done.status_code == 201, done.text
    return Request("GET", f"/v1/rooms/{scene.open_room}/blobs/{document.blob}", caller.headers)


def _log_reads(prefix: str, log_id: Callable[[Scene], str]) -> dict[str, Operation]:
    """Every read of one log, by operation name."""
    reads = {
        "info": ("", ""),
        "checkpoint": ("/checkpoint", "/checkpoint"),
        "hash-tile": ("/tile/{path:path}", "/tile/0/000.p/1"),
        "entry-bundle": ("/tile/{path:path}", "/tile/entries/000.p/1"),
        "entries": ("/entries", "/entries?start=0&end=1"),
        "inclusion-proof": ("/proof/inclusion", "/proof/inclusion?index=0"),
        "consistency-proof": ("/proof/consistency", "/proof/consistency?size1=1"),
    }

    def path(tail: str) -> Callable[[Scene], str]:
        return lambda scene: f"/v1/logs/{log_id(scene)}{tail}"

    return {
        f"{prefix}-{name}": Operation("GET", "/v1/logs/{log_id}" + route, _get(path(tail)))
        for name, (route, tail) in reads.items()
    }


OPERATIONS: dict[str, Operation] = {
    "healthz": Operation("GET", "/healthz", _get(lambda _: "/healthz")),
    "readyz": Operation("GET", "/readyz", _get(lambda _: "/readyz")),
    "metrics": Operation("GET", "/metrics", _get(lambda _: "/metrics")),
    "enroll-preview": Operation("POST", "/v1/enroll/preview", _enroll_preview),
    "enroll": Operation("POST", "/v1/enroll", _enroll, ok=201),
    "auth-challenge": Operation("POST", "/v1/auth/challenge", _challenge),
    "auth-token": Operation("POST", "/v1/auth/token", _token),
    "auth-logout": Operation("POST", "/v1/auth/logout", _logout, ok=204),
    "account-me": Operation("GET", "/v1/accounts/me", _get(lambda _: "/v1/accounts/me")),
    "account": Operation(
        "GET",
        "/v1/accounts/{account_id}",
        _get(lambda s: f"/v1/accounts/{s.actors[Who.PARTY_A].account_id}"),
    ),
    "accounts": Operation("GET", "/v1/accounts", _get(lambda _: "/v1/accounts")),
    "issue-enrollment-token": Operation("POST", "/v1/enrollment-tokens", _invite, ok=201),
    "rotate-encryption-key": Operation("POST", "/v1/devices/me/encryption-keys", _rotate, ok=201),
    "create-room": Operation("POST", "/v1/rooms", _create_room, ok=201),
    "list-rooms": Operation("GET", "/v1/rooms", _get(lambda _: "/v1/rooms")),
    "get-room": Operation("GET", "/v1/rooms/{room_id}", _get(lambda s: f"/v1/rooms/{s.open_room}")),
    "publish-roster": Operation("POST", "/v1/rooms/{room_id}/rosters", _publish_roster, ok=201),
    "get-roster": Operation(
        "GET",
        "/v1/rooms/{room_id}/rosters/{version}",
        _get(lambda s: f"/v1/rooms/{s.open_room}/rosters/1"),
    ),
    "send-plenary": Operation("POST", "/v1/rooms/{room_id}/messages", _send("plenary"), ok=201),
    "send-caucus-a": Operation("POST", "/v1/rooms/{room_id}/messages", _send("caucus-a"), ok=201),
    "send-caucus-b": Operation("POST", "/v1/rooms/{room_id}/messages", _send("caucus-b"), ok=201),
    "send-plenary-shuttle": Operation(
        "POST", "/v1/rooms/{room_id}/messages", _send("plenary", shuttle=True), ok=201
    ),
    "moderate": Operation("POST", "/v1/rooms/{room_id}/moderation", _moderate, ok=201),
    "acknowledge": Operation("POST", "/v1/rooms/{room_id}/instruments", _acknowledge, ok=201),
    "open-offer-round": Operation(
        "POST", "/v1/rooms/{room_id}/instruments", _open_offer_round, ok=201
    ),
    "events": Operation(
        "GET", "/v1/rooms/{room_id}/events", _get(lambda s: f"/v1/rooms/{s.open_room}/events")
    ),
    "stream": Operation("WS", "/v1/rooms/{room_id}/stream", _stream, ok=101),
    "create-upload": Operation("POST", "/v1/rooms/{room_id}/uploads", _create_upload, ok=201),
    "upload-status": Operation("GET", "/v1/rooms/{room_id}/uploads/{upload_id}", _upload_status),
    "upload-chunk": Operation(
        "PUT", "/v1/rooms/{room_id}/uploads/{upload_id}/chunks/{index}", _upload_chunk
    ),
    "complete-upload": Operation(
        "POST", "/v1/rooms/{room_id}/uploads/{upload_id}/complete", _complete_upload, ok=201
    ),
    "abandon-upload": Operation(
        "DELETE", "/v1/rooms/{room_id}/uploads/{upload_id}", _abandon_upload, ok=204
    ),
    "download-blob": Operation("GET", "/v1/rooms/{room_id}/blobs/{blob}", _download_blob),
    **_log_reads("room-log", lambda s: s.open_room),
    **_log_reads("directory-log", lambda _: DIRECTORY_LOG_ID),
    "cosign-room-log": Operation(
        "POST", "/v1/logs/{log_id}/cosignatures", _cosign(directory=False), ok=201
    ),
    "cosign-directory-log": Operation(
        "POST", "/v1/logs/{log_id}/cosignatures", _cosign(directory=True), ok=201
    ),
    "register-witness": Operation("POST", "/v1/witnesses", _register_witness, ok=201),
    "list-witnesses": Operation("GET", "/v1/witnesses", _get(lambda _: "/v1/witnesses")),
    "list-logs": Operation("GET", "/v1/logs", _get(lambda _: "/v1/logs")),
    "request-device-link": Operation("POST", "/v1/device-links", _request_link, ok=201),
    "get-device-link": Operation("GET", "/v1/device-links/{link_id}", _get_link),
    "list-device-links": Operation("GET", "/v1/device-links", _get(lambda _: "/v1/device-links")),
    "approve-device-link": Operation(
        "POST", "/v1/device-links/{link_id}/approve", _approve_link, ok=201
    ),
    "revoke-device": Operation("POST", "/v1/devices/revocations", _revoke_device, ok=201),
}
"""Every operation by name; `test_authorization.TABLE` has one row per name."""
