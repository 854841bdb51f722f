"""Hand-built protocol objects and assertions for API tests.

The SDK always builds well-formed requests; these factories build the same
statements and envelopes from raw keys, with keyword-only overrides, so a test
can send exactly the malformed, mis-signed or misaddressed request it is about.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.envelope import (
    Envelope,
    Header,
    Recipient,
    seal_envelope,
    signed_bytes,
)
from client_sdk.protocol.keys import EncryptionKey, SigLabel, SigningKey, key_id
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Registration,
    Roster,
    RosterDevice,
    RosterMember,
    SignedStatement,
    login_payload,
    sign_statement,
)
from server.services.identity import IdentityService
from server.storage.database import Database
from server.storage.tables import metadata

DAY_MS = 24 * 3600 * 1000
PLENARY = "plenary"

Json = dict[str, Any]


def now_ms() -> int:
    """Wall-clock milliseconds (what the default server clock reads)."""
    return time.time_ns() // 1_000_000


class ManualClock:
    """A server clock that moves only when a test moves it."""

    def __init__(self, start: int | None = None) -> None:
        self.now = now_ms() if start is None else start

    def __call__(self) -> int:
        return self.now

    def advance(self, *, seconds: float) -> None:
        """Move the clock forward."""
        self.now += int(seconds * 1000)


# --- assertions ---------------------------------------------------------------------


def assert_error(
    response: httpx.Response, status: int, code: str, *, mentions: str | None = None
) -> str:
    """Assert the docs/design.md §9 error body with this status and code, carrying the
    answer's request id; return its message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "request_id"}, body
    assert body["error"]["request_id"] == response.headers["x-request-id"], body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert message, body
    if mentions is not None:
        assert mentions in message, message
    return message


def answer(response: httpx.Response) -> tuple[int, Any]:
    """The status and JSON body of an error answer, its request id (checked against the
    header, and different on every answer) left out: two answers meant to be
    indistinguishable are equal in everything else."""
    body = response.json()
    assert body["error"].pop("request_id") == response.headers["x-request-id"], body
    return response.status_code, body


Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(app: FastAPI) -> Snapshot:
    """Every row of every table, so a test can see that nothing changed."""
    database: Database = app.state.services.identity.database
    result: Snapshot = {}
    async with database.read() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            result[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return result


@asynccontextmanager
async def nothing_written(app: FastAPI) -> AsyncIterator[None]:
    """Assert that the block leaves every table exactly as it found it."""
    before = await snapshot(app)
    yield
    after = await snapshot(app)
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"tables changed: {changed}"


# --- identity -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys a client generates at enrollment."""

    account_key: SigningKey = field(default_factory=SigningKey.generate)
    device_key: SigningKey = field(default_factory=SigningKey.generate)
    encryption_key: EncryptionKey = field(default_factory=EncryptionKey.generate)

    @property
    def device_id(self) -> str:
        """The device id: the key id of the device signing key."""
        return key_id(self.device_key.public_bytes())


def registration(
    keys: Keys,
    *,
    account_id: str,
    name: str,
    role: Role,
    signer: SigningKey | None = None,
) -> SignedStatement:
    """A registration statement, signed by the account key unless `signer` is given."""
    statement = Registration(
        account_id=account_id,
        name=name,
        role=role,
        account_key=b64e(keys.account_key.public_bytes()),
        issued_at=now_ms(),
    )
    return sign_statement(signer or keys.account_key, statement)


def device_cert(
    keys: Keys,
    *,
    account_id: str,
    device_id: str | None = None,
    signer: SigningKey | None = None,
) -> SignedStatement:
    """A device certificate for the device key, signed by the account key by default."""
    statement = DeviceCert(
        account_id=account_id,
        device_id=device_id or keys.device_id,
        signing_key=b64e(keys.device_key.public_bytes()),
        issued_at=now_ms(),
    )
    return sign_statement(signer or keys.account_key, statement)


def encryption_key_cert(
    keys: Keys,
    *,
    account_id: str,
    device_id: str | None = None,
    not_after: int | None = None,
    signer: SigningKey | None = None,
) -> SignedStatement:
    """An encryption key certificate (7 days by default), signed by the account key."""
    public = keys.encryption_key.public_bytes()
    statement = EncryptionKeyCert(
        account_id=account_id,
        device_id=device_id or keys.device_id,
        key_id=key_id(public),
        public_key=b64e(public),
        issued_at=now_ms(),
        not_after=not_after if not_after is not None else now_ms() + 7 * DAY_MS,
    )
    return sign_statement(signer or keys.account_key, statement)


def dump(signed: SignedStatement) -> Json:
    """A signed statement as request JSON."""
    return signed.model_dump(mode="json")


def enrollment_body(
    token: str,
    keys: Keys,
    *,
    account_id: str,
    name: str,
    role: Role,
    registration_: SignedStatement | None = None,
    device_cert_: SignedStatement | None = None,
    encryption_key_cert_: SignedStatement | None = None,
) -> Json:
    """A `POST /v1/enroll` body; each statement may be replaced by a hand-made one."""
    reg = registration_ or registration(keys, account_id=account_id, name=name, role=role)
    dev = device_cert_ or device_cert(keys, account_id=account_id)
    enc = encryption_key_cert_ or encryption_key_cert(keys, account_id=account_id)
    return {
        "token": token,
        "registration": dump(reg),
        "device_cert": dump(dev),
        "encryption_key_cert": dump(enc),
    }


async def login(http: httpx.AsyncClient, device_id: str, device_key: SigningKey) -> str:
    """Challenge, sign, and return a bearer token."""
    response = await http.post("/v1/auth/challenge", json={"device_id": device_id})
    assert response.status_code == 200, response.text
    nonce = response.json()["nonce"]
    signature = device_key.sign(SigLabel.LOGIN, login_payload(device_id, nonce))
    response = await http.post(
        "/v1/auth/token",
        json={"device_id": device_id, "nonce": nonce, "signature": b64e(signature)},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@dataclass(frozen=True, slots=True)
class Actor:
    """An enrolled, logged-in account with its one device."""

    account_id: str
    name: str
    role: Role
    keys: Keys
    token: str

    @property
    def device_id(self) -> str:
        """The actor's device id."""
        return self.keys.device_id

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of the actor's bearer token."""
        return {"Authorization": f"Bearer {self.token}"}

    def member(self, side: Side) -> RosterMember:
        """The actor as a roster member on `side`."""
        return RosterMember(
            account_id=self.account_id,
            name=self.name,
            side=side,
            account_key=b64e(self.keys.account_key.public_bytes()),
            devices=[
                RosterDevice(
                    device_id=self.device_id,
                    signing_key=b64e(self.keys.device_key.public_bytes()),
                )
            ],
        )

    def recipient(self) -> Recipient:
        """The actor's device as an envelope recipient."""
        return Recipient(self.device_id, self.keys.encryption_key.public_bytes())


async def enroll_actor(
    http: httpx.AsyncClient, identity: IdentityService, *, role: Role, name: str
) -> Actor:
    """Enroll through the API (operator-issued token) and log in."""
    ticket = await identity.create_enrollment(role=role, name=name)
    keys = Keys()
    body = enrollment_body(ticket.token, keys, account_id=ticket.account_id, name=name, role=role)
    response = await http.post("/v1/enroll", json=body)
    assert response.status_code == 201, response.text
    token = await login(http, keys.device_id, keys.device_key)
    return Actor(account_id=ticket.account_id, name=name, role=role, keys=keys, token=token)


# --- rooms and messages -------------------------------------------------------------


def roster(
    *,
    room_id: str,
    version: int,
    prev_hash: str | None,
    title: str,
    members: list[RosterMember],
    signer: Actor,
) -> Roster:
    """A roster statement naming `signer`'s device as its signer."""
    return Roster(
        room_id=room_id,
        version=version,
        prev_hash=prev_hash,
        title=title,
        members=members,
        signer_device=signer.device_id,
        issued_at=now_ms(),
    )


@dataclass(slots=True)
class RoomSetup:
    """A room with a mediator on its side, Alice on side a and Bob on side b,
    tracking its current roster as tests publish new versions."""

    room_id: str
    title: str
    mediator: Actor
    alice: Actor
    bob: Actor
    current: SignedStatement
    version: int
    seated: list[tuple[Actor, Side]]

    @property
    def actors(self) -> list[Actor]:
        """Every current member, in roster order."""
        return [actor for actor, _ in self.seated]

    def members(self) -> list[RosterMember]:
        """The current members as roster members."""
        return [actor.member(side) for actor, side in self.seated]

    def next_roster(
        self,
        *,
        members: list[RosterMember] | None = None,
        version: int | None = None,
        prev_hash: str | None = None,
        signer: Actor | None = None,
        room_id: str | None = None,
    ) -> Roster:
        """The next roster version, chained to the current one; any field overridable."""
        return roster(
            room_id=room_id or self.room_id,
            version=self.version + 1 if version is None else version,
            prev_hash=prev_hash or b64e(self.current.body_hash()),
            title=self.title,
            members=self.members() if members is None else members,
            signer=signer or self.mediator,
        )


def create_room_body(
    mediator: Actor, *, title: str = "Exchange talks", room_id: str | None = None
) -> tuple[Json, SignedStatement]:
    """A `POST /v1/rooms` body with `mediator` alone in roster version 1."""
    signed = sign_statement(
        mediator.keys.device_key,
        roster(
            room_id=room_id or uuid.uuid4().hex,
            version=1,
            prev_hash=None,
            title=title,
            members=[mediator.member(Side.MEDIATOR)],
            signer=mediator,
        ),
    )
    return {"roster": dump(signed)}, signed


async def create_room(
    http: httpx.AsyncClient, mediator: Actor, alice: Actor, bob: Actor
) -> RoomSetup:
    """Create a room and add Alice (side a) and Bob (side b) as roster version 2."""
    body, first = create_room_body(mediator)
    response = await http.post("/v1/rooms", json=body, headers=mediator.headers)
    assert response.status_code == 201, response.text
    room = RoomSetup(
        room_id=response.json()["room_id"],
        title="Exchange talks",
        mediator=mediator,
        alice=alice,
        bob=bob,
        current=first,
        version=1,
        seated=[(mediator, Side.MEDIATOR)],
    )
    await publish_roster(http, room, [*room.seated, (alice, Side.A), (bob, Side.B)])
    return room


def envelope(
    room: RoomSetup,
    sender: Actor,
    *,
    recipients: list[Actor] | None = None,
    room_id: str | None = None,
    roster_version: int | None = None,
    channel: str = PLENARY,
    message_id: str | None = None,
    text: str = "We propose a one-for-one exchange.",
    sender_device: str | None = None,
    signer: SigningKey | None = None,
) -> Envelope:
    """A sealed, signed envelope from `sender` to every room member by default."""
    return seal_envelope(
        content={"type": "text", "text": text},
        room_id=room_id or room.room_id,
        channel=channel,
        roster_version=room.version if roster_version is None else roster_version,
        sender_device=sender_device or sender.device_id,
        sender_key=signer or sender.keys.device_key,
        recipients=[a.recipient() for a in (room.actors if recipients is None else recipients)],
        sent_at=now_ms(),
        message_id=message_id,
    )


def resigned(
    envelope_: Envelope, key: SigningKey, *, wraps: dict[str, str] | None = None, **header: Any
) -> Json:
    """`envelope_` with header fields or wraps replaced and signed again by `key`, as JSON."""
    new_header = Header.model_validate({**envelope_.header.model_dump(mode="json"), **header})
    new_wraps = envelope_.wraps if wraps is None else wraps
    signature = key.sign(SigLabel.ENVELOPE, signed_bytes(new_header, new_wraps))
    return {
        "header": new_header.model_dump(mode="json"),
        "ciphertext": envelope_.ciphertext,
        "wraps": new_wraps,
        "signature": b64e(signature),
    }


def flip_bit(text: str) -> str:
    """A base64url value with one bit of its first byte flipped (still canonical)."""
    raw = bytearray(b64d(text))
    raw[0] ^= 0x01
    return b64e(bytes(raw))


def assert_bad_input(response: httpx.Response, *, mentions: str | None = None) -> str:
    """Assert a refusal as malformed (400) or invalid (422), with the matching code."""
    assert response.status_code in (400, 422), (response.status_code, response.text)
    code = "malformed" if response.status_code == 400 else "invalid"
    return assert_error(response, response.status_code, code, mentions=mentions)


def replaced(body: Json, path: tuple[str, ...], value: Any) -> Json:
    """A deep copy of `body` with the value at `path` replaced."""
    copy: Json = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def without(body: Json, path: tuple[str, ...]) -> Json:
    """A deep copy of `body` without the key at `path`."""
    copy: Json = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def get(body: Json, path: tuple[str, ...]) -> Any:
    """The value at `path`."""
    value: Any = body
    for key in path:
        value = value[key]
    return value


_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

BAD_BASE64 = ("standard_alphabet", "padded", "impossible_length", "non_canonical")
"""Ways a base64url value can be wrong: `+`/`/`, `=` padding, a length no
encoding has, and set trailing bits that lenient decoders silently drop."""


def bad_base64(value: str, how: str) -> str:
    """`value` (valid unpadded base64url of a length not divisible by 3) made invalid."""
    if how == "standard_alphabet":
        return "+/" + value[2:]
    if how == "padded":
        return value + "=" * (-len(value) % 4)
    if how == "impossible_length":
        return value + "A" * ((1 - len(value)) % 4)
    if how == "non_canonical":
        assert len(value) % 4 in (2, 3), "needs spare trailing bits"
        last = _B64_ALPHABET.index(value[-1])
        return value[:-1] + _B64_ALPHABET[last | 1]
    raise ValueError(how)


async def publish_roster(
    http: httpx.AsyncClient, room: RoomSetup, seated: list[tuple[Actor, Side]]
) -> None:
    """Publish the next roster version (signed by the room's mediator) and track it."""
    statement = room.next_roster(members=[actor.member(side) for actor, side in seated])
    signed = sign_statement(room.mediator.keys.device_key, statement)
    response = await http.post(
        f"/v1/rooms/{room.room_id}/rosters",
        json={"roster": dump(signed)},
        headers=room.mediator.headers,
    )
    assert response.status_code == 201, response.text
    room.current, room.version, room.seated = signed, statement.version, seated
