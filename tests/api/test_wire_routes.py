"""Every JSON answer the server sends has its model in `client_sdk.protocol.wire`, and the
server's real answers parse into those models."""

from __future__ import annotations

import typing

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from client_sdk.protocol.wire import parse_answer, parse_answers
from client_sdk.protocol.wire.errors import ErrorBody
from client_sdk.protocol.wire.events import EventKind, EventsPage, SendResponse
from client_sdk.protocol.wire.health import HealthOut, ReadyOut
from client_sdk.protocol.wire.identity import AccountOut, AccountSummary
from client_sdk.protocol.wire.logs import EntriesOut, LogOut
from client_sdk.protocol.wire.rooms import RoomOut, RoomSummary
from tests.api.conftest import Api
from tests.api.factories import envelope

NO_JSON_ANSWER = frozenset(
    {
        "/v1/auth/logout",  # 204
        "/metrics",  # the Prometheus text format
        "/v1/logs/{log_id}/checkpoint",  # a signed note, text/plain
        "/v1/logs/{log_id}/tile/{path:path}",  # tlog-tiles, octet-stream
        "/v1/logs/{log_id}/cosignatures",  # 201, empty
        "/v1/rooms/{room_id}/blobs/{blob}",  # a document's ciphertext, octet-stream
    }
)
NO_JSON_METHODS = frozenset({("DELETE", "/v1/rooms/{room_id}/uploads/{upload_id}")})  # 204


def _answer_model(route: APIRoute) -> type[BaseModel] | None:
    model = route.response_model
    if typing.get_origin(model) is list:
        (model,) = typing.get_args(model)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def test_every_json_route_answers_with_a_shared_wire_model(app: FastAPI) -> None:
    # FastAPI keeps included routers nested in `app.routes`; this flattens them.
    routes = [
        (context.path, context.original_route)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.path is not None
    ]
    assert len(routes) > 20
    for path, route in routes:
        model = _answer_model(route)
        if path in NO_JSON_ANSWER or {(m, path) for m in route.methods or ()} <= NO_JSON_METHODS:
            assert model is None, path
            continue
        assert model is not None, f"{path} answers without a model"
        assert model.__module__.startswith("client_sdk.protocol.wire."), path


async def test_the_servers_answers_parse_into_their_models(api: Api) -> None:
    room = await api.room()
    alice = room.alice
    base = f"/v1/rooms/{room.room_id}"

    async def get(path: str) -> bytes:
        response = await api.http.get(path, headers=alice.headers)
        assert response.status_code == 200, response.text
        return response.content

    sent = await api.http.post(
        f"{base}/messages",
        json=envelope(room, alice).model_dump(mode="json"),
        headers=alice.headers,
    )
    assert sent.status_code == 201, sent.text
    receipt = parse_answer(SendResponse, sent.content, what="send")

    assert parse_answer(HealthOut, await get("/healthz"), what="health").status == "ok"
    assert parse_answer(ReadyOut, await get("/readyz"), what="ready").status == "ready"
    me = parse_answer(AccountOut, await get("/v1/accounts/me"), what="me")
    assert me.account_id == alice.account_id
    assert parse_answers(AccountSummary, await get("/v1/accounts"), what="accounts")
    assert parse_answer(RoomOut, await get(base), what="room").room_id == room.room_id
    assert parse_answers(RoomSummary, await get("/v1/rooms"), what="rooms")
    page = parse_answer(EventsPage, await get(f"{base}/events"), what="events")
    assert page.events[-1].seq == receipt.seq
    assert page.events[-1].kind is EventKind.MESSAGE
    log = parse_answer(LogOut, await get(f"/v1/logs/{room.room_id}"), what="log")
    entries = await get(f"/v1/logs/{room.room_id}/entries?end={log.size}")
    assert len(parse_answer(EntriesOut, entries, what="entries").entries) == log.size


async def test_an_error_answer_parses_as_the_error_body(api: Api) -> None:
    response = await api.http.get("/v1/rooms/nope")
    assert response.status_code == 401
    body = parse_answer(ErrorBody, response.content, what="error")
    assert body.error.code == "unauthenticated"
