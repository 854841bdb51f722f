"""Readiness and request ids, in-process (issue 12): `/readyz` names the check that
failed, and every answer carries a request id, the caller's own if it is sane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from client_sdk.protocol.errors import NotFoundError
from client_sdk.protocol.wire import parse_answer
from client_sdk.protocol.wire.health import NotReadyOut, ReadyOut
from server.storage.database import Database
from tests.api.conftest import Api, MakeApi
from tests.api.factories import envelope


def _not_ready(response: httpx.Response) -> NotReadyOut:
    """The 503 of /readyz: the JSON error body, with its request id, and the checks."""
    assert response.status_code == 503, response.text
    body = parse_answer(NotReadyOut, response.content, what="not ready")
    assert set(response.json()) == {"error", "checks"}
    assert body.error.code == "not_ready"
    assert body.error.request_id == response.headers["x-request-id"]
    return body


def _database(api: Api) -> Database:
    database: Database = api.app.state.services.health.database
    return database


async def test_ready_when_every_check_passes(api: Api) -> None:
    response = await api.http.get("/readyz")

    assert response.status_code == 200
    ready = parse_answer(ReadyOut, response.content, what="ready")
    assert set(ready.checks) == {"database", "migrations", "log_key", "accepting"}
    assert set(ready.checks.values()) == {"ok"}


@pytest.fixture
async def schema_behind(api: Api) -> AsyncIterator[None]:
    """The database's schema one migration behind the code, put back afterwards."""
    database = _database(api)
    async with database.read() as conn:
        (head,) = (await conn.execute(text("SELECT version_num FROM alembic_version"))).one()
    async with database.write() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        yield
    finally:
        async with database.write() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


@pytest.mark.usefixtures("schema_behind")
async def test_not_ready_names_the_failed_check_in_the_error_body(api: Api) -> None:
    response = await api.http.get("/readyz")

    body = _not_ready(response)
    assert "schema at 0001" in body.checks["migrations"]
    assert body.error.message.startswith("not ready (migrations: schema at 0001")
    assert {k: v for k, v in body.checks.items() if k != "migrations"} == {
        "database": "ok",
        "log_key": "ok",
        "accepting": "ok",
    }


async def test_not_ready_while_shutting_down(api: Api) -> None:
    hub = api.app.state.services.streams.fanout.hub
    hub.closing = True
    try:
        response = await api.http.get("/readyz")
    finally:
        hub.closing = False

    body = _not_ready(response)
    assert body.checks["accepting"] == "shutting down"
    assert "accepting: shutting down" in body.error.message


async def test_a_sane_request_id_is_echoed_in_the_header_and_the_error_body(api: Api) -> None:
    response = await api.http.get("/v1/nowhere", headers={"X-Request-Id": "lb-7f3a:42"})

    assert response.headers["x-request-id"] == "lb-7f3a:42"
    assert response.json()["error"]["request_id"] == "lb-7f3a:42"


@pytest.mark.parametrize(
    "incoming",
    ["x" * 65, "has space", "new\\nline", "<script>", ""],
    ids=["too-long", "space", "escape", "markup", "empty"],
)
async def test_an_insane_request_id_is_replaced(api: Api, incoming: str) -> None:
    response = await api.http.get("/healthz", headers={"X-Request-Id": incoming})

    made = response.headers["x-request-id"]
    assert made != incoming
    assert len(made) == 32
    assert made.isalnum()


async def test_every_answer_gets_its_own_request_id(api: Api) -> None:
    ids = {(await api.http.get("/healthz")).headers["x-request-id"] for _ in range(5)}

    assert len(ids) == 5


async def test_the_sdk_error_carries_the_request_id(api: Api) -> None:
    from client_sdk.client.http import raise_for_error

    response = await api.http.get("/v1/nowhere", headers={"X-Request-Id": "trace-me"})

    with pytest.raises(NotFoundError) as raised:
        raise_for_error(response)
    assert raised.value.request_id == "trace-me"


async def test_an_unexpected_failure_is_the_json_error_body_with_its_request_id(
    make_api: MakeApi,
) -> None:
    api = await make_api()

    async def fail() -> None:
        raise RuntimeError("a bug")

    api.app.add_api_route("/test-only/fail", fail)
    response = await api.http.get("/test-only/fail", headers={"X-Request-Id": "bug-1"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "bug-1"
    assert response.json() == {
        "error": {"code": "internal", "message": "internal error", "request_id": "bug-1"}
    }
    scrape = (await api.http.get("/metrics")).text
    assert 'route="/test-only/fail",status="500"} 1.0' in scrape


async def test_a_method_the_caller_makes_up_is_counted_as_other(api: Api) -> None:
    for method in ("BREW", "WHEN", "BREW"):
        await api.http.request(method, "/healthz")

    scrape = (await api.http.get("/metrics")).text
    assert "BREW" not in scrape
    assert 'method="OTHER",route="/healthz",status="405"} 3.0' in scrape


def _sample(scrape: str, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if (sample.name, sample.labels) == (name, {"type": "message"})
    )


async def test_a_send_is_counted_once_as_a_message_leaf_on_each_backend(api: Api) -> None:
    room = await api.room()
    name = "parley_log_leaves_appended_total"
    before = _sample((await api.http.get("/metrics")).text, name)

    sent = await api.http.post(
        f"/v1/rooms/{room.room_id}/messages",
        json=envelope(room, room.alice).model_dump(mode="json"),
        headers=room.alice.headers,
    )
    refused = await api.http.post(
        f"/v1/rooms/{room.room_id}/messages",
        json=envelope(room, room.alice, roster_version=1).model_dump(mode="json"),
        headers=room.alice.headers,
    )

    assert sent.status_code == 201, sent.text
    assert refused.status_code == 409, refused.text
    assert _sample((await api.http.get("/metrics")).text, name) == before + 1
