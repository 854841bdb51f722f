"""A malicious server: the real application behind a seam that lies on demand.

The server operator is trusted for availability only (docs/design.md §1), so these tests
put the victim's SDK behind `MaliciousServer`, an httpx transport in front of
the real app (in process, over `httpx.ASGITransport`). A test tells it which
JSON answers (or requests) to rewrite; everything else is real: the database,
the signatures, HPKE. The seam also records every request the victim sent, so
a test can show what never left the device.

A malicious operator can also write its own database and logs: `Operator`
appends leaves to the directory and room logs, and stores events, through the
server's own code. What it writes is then served with valid inclusion proofs
under checkpoints signed by the server's log key, which is how a real attack
would get past the SDK's log checks; auditors would see it, the SDK must
refuse it first.

Fixture `talks` is the usual scene: mediator Mona, Alice on side a and Bob on
side b in one room. Alice is the victim (her SDK reaches the server only
through `talks.server`); Mona and Bob talk to the app directly. The helpers
below forge what the operator can make on its own (keys, accounts, rosters
signed by keys it holds) and, where a test needs a colluding or compromised
party, sign with that party's real keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.client import ParleyClient
from client_sdk.protocol.encoding import b64d, b64e, canonical_json, sha256
from client_sdk.protocol.envelope import Envelope, Recipient, seal_envelope
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Registration,
    Roster,
    RosterDevice,
    RosterMember,
    SignedStatement,
    sign_statement,
)
from server.services.directory import append_directory
from server.services.identity import IdentityService
from server.storage.events import EventRepository, EventRow
from server.storage.rooms import RoomRepository
from tests.conftest import BASE_URL, PASSPHRASE, TEST_SCRYPT_N, OpenProfile, enroll_profile
from tests.support.scenes import Seed, scene_value

Json = Any
"""Decoded JSON, as the seam hands it to an edit."""

Edit = Callable[[Json], Json]
"""Rewrites one decoded JSON body; may change it in place, and returns the result."""

DAY_MS = 24 * 3600 * 1000


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of every Parley timestamp."""
    return time.time_ns() // 1_000_000


# --- the seam -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request exactly as the victim's SDK sent it, and the status it got back."""

    method: str
    path: str
    url: str
    body: bytes
    status: int


@dataclass(slots=True)
class _Rule:
    method: str
    path: str
    edit: Edit
    status: int | None


class MaliciousServer(httpx.AsyncBaseTransport):
    """The real app behind a transport that rewrites chosen JSON bodies on the fly.

    Rules match a method and an exact URL path (the query string is ignored);
    every matching rule applies, in the order it was added.
    """

    def __init__(self, app: FastAPI) -> None:
        self._upstream = httpx.ASGITransport(app=app)
        self._request_rules: list[_Rule] = []
        self._response_rules: list[_Rule] = []
        self.exchanges: list[Exchange] = []

    def rewrite_response(
        self, method: str, path: str, edit: Edit, *, status: int | None = None
    ) -> None:
        """Answer `method path` with `edit` applied to the real answer (and `status`, if set)."""
        self._response_rules.append(_Rule(method, path, edit, status))

    def rewrite_request(self, method: str, path: str, edit: Edit) -> None:
        """Pass `method path` on to the app with `edit` applied to the victim's body."""
        self._request_rules.append(_Rule(method, path, edit, None))

    def be_honest(self) -> None:
        """Drop every rule: from now on the real app answers as it is."""
        self._request_rules.clear()
        self._response_rules.clear()

    def sent(self, method: str, path: str) -> list[Exchange]:
        """The victim's requests to `method path`, in order."""
        return [e for e in self.exchanges if e.method == method and e.path == path]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Record the request, rewrite it if told to, ask the app, rewrite the answer."""
        original = await request.aread()
        forwarded = request
        request_rules = self._matching(self._request_rules, request)
        if request_rules:
            body = json.loads(original)
            for rule in request_rules:
                body = rule.edit(body)
            forwarded = httpx.Request(
                request.method,
                request.url,
                headers=_without_length(request.headers),
                content=_encode(body),
            )
        response = await self._upstream.handle_async_request(forwarded)
        response_rules = self._matching(self._response_rules, request)
        if response_rules:
            answer = json.loads(await response.aread())
            status = response.status_code
            for rule in response_rules:
                answer = rule.edit(answer)
                status = rule.status or status
            response = httpx.Response(
                status,
                headers=_without_length(response.headers),
                content=_encode(answer),
                request=request,
            )
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                url=str(request.url),
                body=original,
                status=response.status_code,
            )
        )
        return response

    async def aclose(self) -> None:
        """Close the upstream transport."""
        await self._upstream.aclose()

    @staticmethod
    def _matching(rules: list[_Rule], request: httpx.Request) -> list[_Rule]:
        return [r for r in rules if r.method == request.method and r.path == request.url.path]


def _encode(value: Json) -> bytes:
    return json.dumps(value).encode()


def _without_length(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() != "content-length"]


class Operator:
    """The operator beyond the wire: it runs the database and holds the log key.

    It writes through the server's own services and repositories, so what it
    logs gets real leaves, inclusion proofs and signed checkpoints.
    """

    def __init__(self, app: FastAPI) -> None:
        self._services = app.state.services

    async def log_account(self, account: dict[str, Any]) -> None:
        """Log an account's registration and every device statement, as enrollment would."""
        account_key = b64d(account["registration"]["body"]["account_key"])
        await self._log_directory(account_key, [("registration", account["registration"])])
        for device in account["devices"]:
            await self.log_device(account_key, device)

    async def log_device(self, account_key: bytes, device: dict[str, Any]) -> None:
        """Log a device entry's certificate and its encryption key certificate."""
        statements = [("device", device["cert"])]
        if device.get("encryption_key"):
            statements.append(("encryption-key", device["encryption_key"]["cert"]))
        await self._log_directory(account_key, statements)

    async def _log_directory(
        self, account_key: bytes, statements: list[tuple[str, dict[str, Any]]]
    ) -> None:
        identity = self._services.identity
        async with identity.database.write() as conn:
            for kind, statement in statements:
                # The server's own directory append: leaf, subtree hashes, checkpoint, index.
                await append_directory(
                    conn,
                    identity.log,
                    kind,
                    SignedStatement.model_validate(statement),
                    account_key,
                    now_ms(),
                )

    async def store_envelope(self, room_id: str, payload: dict[str, Any]) -> int:
        """Log and store `payload` (an envelope, as the server would) as the room's next event."""
        envelope = Envelope.model_validate(payload)
        return await self._store_event(
            room_id,
            kind="message",
            payload=payload,
            actor=envelope.header.sender_device,
            payload_hash=sha256(envelope.signed_bytes()),
            signature=envelope.signature,
        )

    async def store_roster(self, room_id: str, signed: SignedStatement) -> int:
        """Log and store a roster statement as the room's next event (its version unchanged)."""
        return await self._store_event(
            room_id,
            kind="roster",
            payload=dump(signed),
            actor=str(signed.body["signer_device"]),
            payload_hash=signed.body_hash(),
            signature=signed.signature,
        )

    async def store_statement(self, room_id: str, kind: str, signed: SignedStatement) -> int:
        """Log and store a signed statement (a moderation or instrument act, as given) as
        the room's next event of `kind`, whatever the rules say."""
        return await self._store_event(
            room_id,
            kind=kind,
            payload=dump(signed),
            actor=str(signed.body["signer_device"]),
            payload_hash=signed.body_hash(),
            signature=signed.signature,
        )

    async def _store_event(
        self,
        room_id: str,
        *,
        kind: str,
        payload: dict[str, Any],
        actor: str,
        payload_hash: bytes,
        signature: str,
    ) -> int:
        messages = self._services.messages
        now = now_ms()
        async with messages.database.write() as conn:
            rooms = RoomRepository(conn)
            room = await rooms.get_for_update(room_id)
            assert room is not None
            appended = await messages.log.append(
                conn,
                room_id,
                type=kind,
                actor_device=actor,
                payload_hash=payload_hash,
                signature=b64d(signature),
                server_time=now,
            )
            seq = room.last_seq + 1
            await EventRepository(conn).add(
                EventRow(
                    room_id=room_id,
                    seq=seq,
                    kind=kind,
                    channel="plenary" if kind == "message" else None,
                    message_id=None,  # the column is unique; the envelope keeps its real id
                    sender_device=actor,
                    payload=canonical_json(payload).decode(),
                    payload_hash=payload_hash,
                    leaf_index=appended.index,
                    created_at=now,
                )
            )
            await rooms.set_last_seq(room_id, seq)
        return seq


# --- the scene ----------------------------------------------------------------------


EnrollThrough = Callable[..., Awaitable[ParleyClient]]
BehindSeam = Callable[[ParleyClient], tuple[ParleyClient, MaliciousServer]]


@dataclass(frozen=True, slots=True)
class Talks:
    """Mona mediates a room with Alice (side a) and Bob (side b); Alice is behind `server`."""

    server: MaliciousServer
    operator: Operator
    mediator: ParleyClient
    alice: ParleyClient
    bob: ParleyClient
    room_id: str

    @property
    def messages_path(self) -> str:
        """Where envelopes are posted."""
        return f"/v1/rooms/{self.room_id}/messages"

    @property
    def events_path(self) -> str:
        """Where events are paged."""
        return f"/v1/rooms/{self.room_id}/events"


def account_id(client: ParleyClient) -> str:
    """The client's account id."""
    return client.keystore.state.account_id


def device_id(client: ParleyClient) -> str:
    """The client's device id."""
    return client.keystore.state.device_id


@pytest.fixture
async def enroll_through(
    app: FastAPI, identity: IdentityService, tmp_path: Path
) -> AsyncIterator[EnrollThrough]:
    """Factory: enroll an account over `transport` (default: straight to the app)."""
    clients: list[ParleyClient] = []

    async def factory(
        *,
        name: str,
        role: Role = Role.PARTY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> ParleyClient:
        ticket = await identity.create_enrollment(role=role, name=name)
        client = await ParleyClient.enroll(
            server=BASE_URL,
            token=ticket.token,
            home=tmp_path / f"adversarial-{len(clients)}",
            passphrase=PASSPHRASE,
            transport=transport or httpx.ASGITransport(app=app),
            scrypt_n=TEST_SCRYPT_N,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
async def behind_seam(app: FastAPI) -> AsyncIterator[BehindSeam]:
    """Factory: the same profile (keystore) as `client`, reconnected through a new seam."""
    clients: list[ParleyClient] = []

    def factory(client: ParleyClient) -> tuple[ParleyClient, MaliciousServer]:
        server = MaliciousServer(app)
        victim = ParleyClient(client.keystore, transport=server)
        clients.append(victim)
        return victim, server

    yield factory
    for client in clients:
        await client.aclose()


async def open_room(
    mediator: ParleyClient,
    *,
    a: list[ParleyClient],
    b: list[ParleyClient],
    require_verified: bool = False,
) -> str:
    """A room the mediator creates, then adds `a` on side a and `b` on side b (in order)."""
    room = await mediator.create_room("Exchange talks", require_verified=require_verified)
    for side, clients in ((Side.A, a), (Side.B, b)):
        for client in clients:
            await mediator.add_member(room.room_id, account_id(client), side)
    return room.room_id


@dataclass(frozen=True, slots=True)
class _Scene:
    room_id: str
    exchanges: list[Exchange]
    """What Alice's SDK sent through the seam while the scene was built (her enrollment)."""


_HOMES = ("scene-mona", "scene-alice", "scene-bob")


async def _build_talks(app: FastAPI, root: Path) -> _Scene:
    """Enroll Mona, Alice (through a seam) and Bob, and open the room."""
    server = MaliciousServer(app)
    mona, alice, bob = _HOMES
    mediator = await enroll_profile(app, root / mona, role=Role.MEDIATOR, name="Mona")
    victim = await enroll_profile(app, root / alice, name="Alice", transport=server)
    other = await enroll_profile(app, root / bob, name="Bob")
    try:
        room_id = await open_room(mediator, a=[victim], b=[other])
    finally:
        for client in (mediator, victim, other):
            await client.aclose()
    return _Scene(room_id, list(server.exchanges))


TALKS = Seed("adversarial-talks", _build_talks)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> Seed | None:
    """Tests of the talks start from its scene; the others from an empty database."""
    return TALKS if "talks_scene" in request.fixturenames else None


@pytest.fixture
def talks_scene(request: pytest.FixtureRequest, database_url: str) -> _Scene:
    """The talks' room and Alice's recorded enrollment, in this test's copy of the scene."""
    scene: _Scene = scene_value(request)
    return scene


@pytest.fixture
async def talks(
    app: FastAPI, talks_scene: _Scene, open_profile: OpenProfile, tmp_path: Path
) -> Talks:
    """Roster v1 Mona, v2 + Alice, v3 + Bob (events 1-3); Alice behind the seam.

    Built once per module and backend (`TALKS`); each test gets its own copy of the
    database and profiles, opened again as a restarted device would, and a new seam
    that has already recorded Alice's enrollment.
    """
    server = MaliciousServer(app)
    server.exchanges.extend(talks_scene.exchanges)
    mona, alice, bob = _HOMES
    return Talks(
        server=server,
        operator=Operator(app),
        mediator=open_profile(tmp_path / mona),
        alice=open_profile(tmp_path / alice, transport=server),
        bob=open_profile(tmp_path / bob),
        room_id=talks_scene.room_id,
    )


# --- what a malicious operator can make -----------------------------------------------


def device_json(
    account_key: SigningKey,
    account: str,
    *,
    device_key: SigningKey | None = None,
    encryption_key: EncryptionKey | None = None,
    issued_at: int | None = None,
    not_after: int | None = None,
) -> dict[str, Any]:
    """A directory device entry, its certificates signed by `account_key`."""
    device_key = device_key or SigningKey.generate()
    encryption_key = encryption_key or EncryptionKey.generate()
    issued_at = now_ms() if issued_at is None else issued_at
    not_after = issued_at + 7 * DAY_MS if not_after is None else not_after
    device = key_id(device_key.public_bytes())
    public = encryption_key.public_bytes()
    cert = sign_statement(
        account_key,
        DeviceCert(
            account_id=account,
            device_id=device,
            signing_key=b64e(device_key.public_bytes()),
            issued_at=issued_at,
        ),
    )
    encryption_cert = sign_statement(
        account_key,
        EncryptionKeyCert(
            account_id=account,
            device_id=device,
            key_id=key_id(public),
            public_key=b64e(public),
            issued_at=issued_at,
            not_after=not_after,
        ),
    )
    return {
        "device_id": device,
        "signing_key": b64e(device_key.public_bytes()),
        "cert": dump(cert),
        "encryption_key": {
            "key_id": key_id(public),
            "public_key": b64e(public),
            "not_after": not_after,
            "cert": dump(encryption_cert),
        },
    }


def impostor_account(of: ParleyClient) -> dict[str, Any]:
    """The directory entry of `of`'s account id and name, under keys the server made up.

    Self-consistent: the registration, device and encryption key certificates
    all verify under the impostor's account key.
    """
    state = of.keystore.state
    account_key = SigningKey.generate()
    registration = sign_statement(
        account_key,
        Registration(
            account_id=state.account_id,
            name=state.name,
            role=state.role,
            account_key=b64e(account_key.public_bytes()),
            issued_at=now_ms(),
        ),
    )
    return {
        "account_id": state.account_id,
        "name": state.name,
        "role": state.role.value,
        "account_key": b64e(account_key.public_bytes()),
        "registration": dump(registration),
        "devices": [device_json(account_key, state.account_id)],
    }


async def impersonate(talks: Talks, server: MaliciousServer, of: ParleyClient) -> dict[str, Any]:
    """Swap in an impostor for `of`'s account: logged in the directory, served by `server`.

    The answer keeps the real checkpoint, with only the impostor's directory
    entries (and their real inclusion proofs); returns the impostor's account.
    """
    impostor = impostor_account(of)
    await talks.operator.log_account(impostor)
    serve_account(server, impostor)
    return impostor


def serve_account(server: MaliciousServer, account: dict[str, Any]) -> None:
    """Make `server` answer for `account`'s id with it, proving only its own statements."""
    statements = [account["registration"]]
    for device in account["devices"]:
        statements.append(device["cert"])
        if device.get("encryption_key"):
            statements.append(device["encryption_key"]["cert"])
    hashes = {SignedStatement.model_validate(s).body_hash() for s in statements}

    def answer(real: dict[str, Any]) -> dict[str, Any]:
        entries = [
            e
            for e in real["directory"]["entries"]
            if SignedStatement.model_validate(e["statement"]).body_hash() in hashes
        ]
        return {**account, "directory": {**real["directory"], "entries": entries}}

    server.rewrite_response("GET", f"/v1/accounts/{account['account_id']}", answer)


def replace_with(value: Json) -> Edit:
    """An edit that ignores the real answer and serves `value`."""
    return lambda _real: value


def dump(signed: SignedStatement) -> dict[str, Any]:
    """A signed statement as it travels."""
    return signed.model_dump(mode="json")


async def served_roster(client: ParleyClient, room_id: str, version: int) -> SignedStatement:
    """Roster `version` of a room, as the (honest) server serves it to `client`."""
    data = await client.http.request("GET", f"/v1/rooms/{room_id}/rosters/{version}")
    return SignedStatement.model_validate(data["roster"])


def next_roster(
    current: SignedStatement,
    *,
    members: list[RosterMember],
    signer: SigningKey,
    signer_device: str,
) -> SignedStatement:
    """The version after `current`, chained to it, listing `members`, signed by `signer`."""
    roster = Roster.model_validate(current.body)
    return sign_statement(
        signer,
        Roster(
            room_id=roster.room_id,
            version=roster.version + 1,
            prev_hash=b64e(current.body_hash()),
            title=roster.title,
            members=members,
            policy=roster.policy,
            signer_device=signer_device,
            issued_at=now_ms(),
        ),
    )


def roster_member(client: ParleyClient, side: Side) -> RosterMember:
    """How a roster lists `client`'s account and device."""
    state = client.keystore.state
    return RosterMember(
        account_id=state.account_id,
        name=state.name,
        side=side,
        account_key=b64e(state.account_key.public_bytes()),
        devices=[
            RosterDevice(
                device_id=state.device_id, signing_key=b64e(state.device_key.public_bytes())
            )
        ],
    )


def serve_as_current_roster(server: MaliciousServer, room_id: str, signed: SignedStatement) -> None:
    """Make `server` present `signed` as the room's current roster, wherever it is read."""
    version = signed.body["version"]
    server.rewrite_response(
        "GET",
        f"/v1/rooms/{room_id}",
        lambda room: {**room, "roster_version": version, "roster": dump(signed)},
    )
    server.rewrite_response(
        "GET",
        f"/v1/rooms/{room_id}/rosters/{version}",
        replace_with({"version": version, "seq": 1_000, "roster": dump(signed)}),
        status=200,
    )


async def read_into(read: list[str], client: ParleyClient, room_id: str) -> None:
    """Append each message text `client` reads in the room to `read`, as it is handed over."""
    async for message in client.messages(room_id):
        read.append(message.text)


def flip_bit(text: str) -> str:
    """The base64url value `text` with one bit of its middle byte flipped."""
    data = bytearray(b64d(text))
    data[len(data) // 2] ^= 0x01
    return b64e(bytes(data))


def seal_from(
    sender: ParleyClient,
    room_id: str,
    text: str,
    *,
    roster_version: int,
    to: list[ParleyClient],
) -> Envelope:
    """An envelope `sender`'s device really signs, sealed to the current keys of `to`."""
    state = sender.keystore.state
    return seal_envelope(
        content={"type": "text", "text": text},
        room_id=room_id,
        channel="plenary",
        roster_version=roster_version,
        sender_device=state.device_id,
        sender_key=state.device_key,
        recipients=[
            Recipient(device_id(c), c.keystore.current_encryption_key().public) for c in to
        ],
        sent_at=now_ms(),
    )


def edit_events(edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> Edit:
    """An edit of an events page that rewrites its list of events."""

    def page(answer: Json) -> Json:
        events = edit(answer["events"])
        return {**answer, "events": events, "next_after": events[-1]["seq"] if events else 0}

    return page


def edit_event(seq: int, edit: Callable[[dict[str, Any]], None]) -> Edit:
    """An edit of an events page that changes (in place) the event numbered `seq`."""

    def events(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for event in page:
            if event["seq"] == seq:
                edit(event)
        return page

    return edit_events(events)
