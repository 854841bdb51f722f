"""A hostile server for tests: the real application behind a seam that lies on demand.

The server operator is trusted for availability only (docs/design.md §1), so the
adversarial tests put a victim's SDK behind `MaliciousServer`, an httpx
transport in front of the real app (in process, over `httpx.ASGITransport`). A
test tells it which answers (or requests) to rewrite; everything else is real:
the database, the signatures, HPKE. The seam also records every request the
victim sent, so a test can show what never left the device. `HttpProxy` serves
the same seam over TCP, so the `parley` command in a subprocess can be put
behind it too.

A malicious operator can also write its own database and logs: `Operator`
appends leaves to the directory and room logs, and stores events, through the
server's own code. What it writes is then served with valid inclusion proofs
under checkpoints signed by the server's log key, which is how a real attack
would get past the SDK's log checks; auditors would see it, the SDK must
refuse it first.

This module exists only under ``tests/``: no build of Parley can reach it.
`tests.support.attacks` defines each attack with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from client_sdk.protocol.encoding import b64d, b64e, canonical_json, sha256
from client_sdk.protocol.envelope import Envelope
from client_sdk.protocol.note import Checkpoint
from client_sdk.protocol.statements import SignedStatement
from server.log.proofs import proof_at_append
from server.services.directory import append_directory
from server.storage.events import EventRepository, EventRow
from server.storage.rooms import RoomRepository

Json = Any
"""Decoded JSON, as the seam hands it to an edit."""

Edit = Callable[[Json], Json]
"""Rewrites one decoded JSON body; may change it in place, and returns the result."""

TextEdit = Callable[[str], str]
"""Rewrites one text answer (a signed checkpoint note)."""


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


Respond = Callable[[Json], Awaitable[Json]]
"""Answers a request's decoded JSON body in the app's place (the app never sees it)."""


class MaliciousServer(httpx.AsyncBaseTransport):
    """The real app behind a transport that rewrites chosen JSON bodies on the fly.

    Rules match a method and an exact URL path (the query string is ignored);
    every matching rule applies, in the order it was added.
    """

    def __init__(self, app: FastAPI) -> None:
        self._upstream = httpx.ASGITransport(app=app)
        self._request_rules: list[_Rule] = []
        self._response_rules: list[_Rule] = []
        self._text_rules: list[tuple[str, str, TextEdit]] = []
        self._responders: dict[tuple[str, str], Respond] = {}
        self.exchanges: list[Exchange] = []

    def rewrite_response(
        self, method: str, path: str, edit: Edit, *, status: int | None = None
    ) -> None:
        """Answer `method path` with `edit` applied to the real answer (and `status`, if set)."""
        self._response_rules.append(_Rule(method, path, edit, status))

    def rewrite_request(self, method: str, path: str, edit: Edit) -> None:
        """Pass `method path` on to the app with `edit` applied to the victim's body."""
        self._request_rules.append(_Rule(method, path, edit, None))

    def rewrite_text(self, method: str, path: str, edit: TextEdit) -> None:
        """Answer `method path` (a text answer: a checkpoint note) with `edit` applied."""
        self._text_rules.append((method, path, edit))

    def respond(self, method: str, path: str, respond: Respond) -> None:
        """Answer `method path` with what `respond` makes of the request's JSON body; the
        app never sees such a request (the operator decides, e.g. through `Operator`)."""
        self._responders[(method, path)] = respond

    def be_honest(self) -> None:
        """Drop every rule: from now on the real app answers as it is."""
        self._request_rules.clear()
        self._response_rules.clear()
        self._text_rules.clear()
        self._responders.clear()

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
        responder = self._responders.get((request.method, request.url.path))
        if responder is not None:
            response = httpx.Response(200, json=await responder(json.loads(original)))
        else:
            response = await self._upstream.handle_async_request(forwarded)
        texts = [
            edit
            for method, path, edit in self._text_rules
            if (method, path) == (request.method, request.url.path)
        ]
        if texts:
            text = (await response.aread()).decode()
            for edit in texts:
                text = edit(text)
            response = httpx.Response(
                response.status_code,
                headers=_without_length(response.headers),
                content=text.encode(),
                request=request,
            )
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
        self.last = (0, 0)
        """The leaf index and time of the last event stored."""

    async def revoke(self, target: str) -> None:
        """Revoke a device or account as `parley admin revoke` does (a logged revocation
        signed with the operator's key)."""
        await self._services.devices.operator_revoke(target, reason="reported stolen")

    def sign(self, checkpoint: Checkpoint) -> str:
        """A checkpoint note of any tree head, signed with the server's real log key."""
        note: str = self._services.logs.signer.sign(checkpoint)
        return note

    async def accept_message(self, room_id: str, payload: Json) -> Json:
        """Log and store an envelope whatever the room's rules say, and answer as the
        server answers a send: where it landed, the checkpoint, the inclusion proof."""
        seq = await self.store_envelope(room_id, payload)
        index, created_at = self.last
        async with self._services.messages.database.read() as conn:
            checkpoint, proof = await proof_at_append(conn, room_id, index)
        return {
            "seq": seq,
            "leaf_index": index,
            "message_id": payload["header"]["message_id"],
            "created_at": created_at,
            "checkpoint": checkpoint,
            "inclusion_proof": [b64e(p) for p in proof],
        }

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
            self.last = appended.index, now
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


# --- edits ------------------------------------------------------------------------


def dump(signed: SignedStatement) -> dict[str, Any]:
    """A signed statement as it travels."""
    return signed.model_dump(mode="json")


def replace_with(value: Json) -> Edit:
    """An edit that ignores the real answer and serves `value`."""
    return lambda _real: value


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


def flip_bit(text: str) -> str:
    """The base64url value `text` with one bit of its middle byte flipped."""
    data = bytearray(b64d(text))
    data[len(data) // 2] ^= 0x01
    return b64e(bytes(data))


# --- over TCP, for the `parley` command -----------------------------------------------


class HttpProxy:
    """An ASGI app that passes every HTTP request to a `MaliciousServer` (and so to the
    real app behind it): served by uvicorn, it puts a `parley` subprocess behind the
    seam. WebSocket streams are not proxied."""

    def __init__(self, seam: MaliciousServer) -> None:
        self._seam = seam

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        """Forward one request and send back the seam's answer."""
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = httpx.Request(
            scope["method"],
            httpx.URL(
                scheme="http", host="parley.test", path=scope["path"], query=scope["query_string"]
            ),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            content=body,
        )
        response = await self._seam.handle_async_request(request)
        content = await response.aread()
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        ]
        headers.append((b"content-length", str(len(content)).encode()))
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        await send({"type": "http.response.body", "body": content})
