"""Who may do what: every HTTP and WebSocket operation, tried as every kind of caller.

`TABLE` is the specification. Each row is one operation of `authz.OPERATIONS`
(a route, sometimes in several variants: the channel of a send, the log a
read is of) and says, for each caller, whether the server does it ("ok") or
which status refuses it: 401 without credentials, 403 for a caller the server
knows but whose role or side does not allow it, and 404 for a caller who is not
in the room (a room id must not tell a stranger that the room exists). A
granted auditor reads the room's log, not its events, messages or roster.

Every route the app serves needs a row (`test_every_route_has_a_row`), and a
refused cell must leave every table of the database exactly as it was.

Cost: one scene per backend per module (six enrolled accounts, two rooms); the
cells share it. Allowed cells do write (a message, a roster version, a
moderation act), so every attempt reads the room's current roster when it is
made, and the writes are chosen to leave the scene as the other cells expect
it. The whole matrix runs on SQLite and again on PostgreSQL (when
``PARLEY_TEST_POSTGRES_URL`` is set, on a database of its own): each half
takes about ten seconds, so no backend gets only a slice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, Literal

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts

from server.app import create_app
from server.config import Settings
from tests.api.authz import OPERATIONS, Scene, Who, build_scene, perform
from tests.api.factories import assert_error, nothing_written
from tests.conftest import BASE_URL
from tests.support.databases import (
    create_database,
    drop_database,
    postgres_admin_url,
    with_database,
)

OK: Final = "ok"
Outcome = Literal["ok", 401, 403, 404]
Row = tuple[Outcome, Outcome, Outcome, Outcome, Outcome, Outcome, Outcome]
"""One outcome per caller, in the order of `Who`."""

ANYONE: Final[Row] = (OK, OK, OK, OK, OK, OK, OK)
ENROLLED: Final[Row] = (OK, OK, OK, OK, OK, OK, 401)
MEMBERS: Final[Row] = (OK, OK, OK, OK, 404, 404, 401)
LOG_READERS: Final[Row] = (OK, OK, OK, OK, OK, 404, 401)
UPLOADERS: Final[Row] = (OK, OK, OK, 404, 404, 404, 401)
"""An upload is its uploader's alone: anyone else is told there is no such upload."""

# fmt: off
TABLE: dict[str, Row] = {
    #                                   mediator party-a party-b observer auditor outsider anonymous
    "healthz":                         ANYONE,
    "readyz":                          ANYONE,
    "metrics":                         ANYONE,
    "enroll-preview":                  ANYONE,
    "enroll":                          ANYONE,
    "auth-challenge":                  ANYONE,
    "auth-token":                      ANYONE,
    "auth-logout":                     ENROLLED,
    "account-me":                      ENROLLED,
    "account":                         ENROLLED,
    "accounts":                        ENROLLED,
    "issue-enrollment-token":          (OK,     403,    403,    403,     403,    403,     401),
    "rotate-encryption-key":           ENROLLED,
    "create-room":                     (OK,     403,    403,    403,     403,    403,     401),
    "list-rooms":                      ENROLLED,
    "get-room":                        MEMBERS,
    "publish-roster":                  (OK,     403,    403,    403,     404,    404,     401),
    "get-roster":                      MEMBERS,
    "send-plenary":                    (OK,     OK,     OK,     403,     404,    404,     401),
    "send-caucus-a":                   (OK,     OK,     403,    403,     404,    404,     401),
    "send-caucus-b":                   (OK,     403,    OK,     403,     404,    404,     401),
    "send-plenary-shuttle":            (OK,     403,    403,    403,     404,    404,     401),
    "moderate":                        (OK,     403,    403,    403,     404,    404,     401),
    "acknowledge":                     MEMBERS,
    "open-offer-round":                (OK,     403,    403,    403,     404,    404,     401),
    "events":                          MEMBERS,
    "stream":                          MEMBERS,
    "create-upload":                   (OK,     OK,     OK,     403,     404,    404,     401),
    "upload-status":                   UPLOADERS,
    "upload-chunk":                    UPLOADERS,
    "complete-upload":                 UPLOADERS,
    "abandon-upload":                  UPLOADERS,
    "download-blob":                   MEMBERS,
    "room-log-info":                   LOG_READERS,
    "room-log-checkpoint":             LOG_READERS,
    "room-log-hash-tile":              LOG_READERS,
    "room-log-entry-bundle":           LOG_READERS,
    "room-log-entries":                LOG_READERS,
    "room-log-inclusion-proof":        LOG_READERS,
    "room-log-consistency-proof":      LOG_READERS,
    "directory-log-info":              ENROLLED,
    "directory-log-checkpoint":        ENROLLED,
    "directory-log-hash-tile":         ENROLLED,
    "directory-log-entry-bundle":      ENROLLED,
    "directory-log-entries":           ENROLLED,
    "directory-log-inclusion-proof":   ENROLLED,
    "directory-log-consistency-proof": ENROLLED,
    "cosign-room-log":                 (403,    403,    403,    403,     OK,     404,     401),
    "cosign-directory-log":            (403,    403,    403,    403,     OK,     403,     401),
    "register-witness":                (403,    403,    403,    403,     OK,     403,     401),
    "list-logs":                       ENROLLED,
    "list-witnesses":                  ENROLLED,
    "request-device-link":             ANYONE,
    "get-device-link":                 ANYONE,
    "list-device-links":               ENROLLED,
    "approve-device-link":             ENROLLED,
    "revoke-device":                   ENROLLED,
}
# fmt: on

ERROR_CODES: Final = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
UNLISTED_ROUTES: Final = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
"""FastAPI's own documentation pages: public, and not Parley's API."""

CELLS = [
    pytest.param(operation, who, id=f"{operation}-{who}")
    for operation, row in TABLE.items()
    for who, _ in zip(Who, row, strict=True)
]


def expected(operation: str, who: Who) -> Outcome:
    """The table's word on one cell."""
    return TABLE[operation][list(Who).index(who)]


# --- the scenes -----------------------------------------------------------------------


def _settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        rate_limit_per_second=10_000.0,
        rate_limit_burst=10_000,
    )


@asynccontextmanager
async def _scene(settings: Settings) -> AsyncIterator[Scene]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http,
    ):
        yield await build_scene(app, http)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sqlite_scene(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scene]:
    """The scene on a SQLite file migrated on start."""
    directory = tmp_path_factory.mktemp("authorization")
    settings = _settings(f"sqlite+aiosqlite:///{directory / 'parley.db'}", directory / "server")
    async with _scene(settings) as scene:
        yield scene


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def postgres_scene(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scene]:
    """The scene on a PostgreSQL database of its own, dropped afterwards."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL half skipped: set PARLEY_TEST_POSTGRES_URL to run it")
    name = await create_database(admin)
    try:
        url = with_database(admin, name, driver="postgresql+asyncpg")
        async with _scene(_settings(url, tmp_path_factory.mktemp("authorization-pg"))) as scene:
            yield scene
    finally:
        await drop_database(admin, name)


# --- the matrix -----------------------------------------------------------------------


async def check_cell(scene: Scene, operation: str, who: Who) -> None:
    """Try `operation` as `who` and hold the answer to the table."""
    spec = OPERATIONS[operation]
    outcome = expected(operation, who)
    request = await spec.prepare(scene, scene.caller(who))
    if outcome == OK:
        answer = await perform(scene, request)
        body = "" if answer.response is None else answer.response.text
        assert answer.status == spec.ok, f"{operation} as {who}: {answer.status} {body}"
        return
    async with nothing_written(scene.app):
        answer = await perform(scene, request)
    if answer.response is None:  # a stream refuses with 44xx close codes
        assert answer.status == 4000 + outcome, f"{operation} as {who}: closed {answer.status}"
    else:
        assert_error(answer.response, outcome, ERROR_CODES[outcome])


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("operation", "who"), CELLS)
async def test_authorization(sqlite_scene: Scene, operation: str, who: Who) -> None:
    await check_cell(sqlite_scene, operation, who)


@pytest.mark.postgres
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("operation", "who"), CELLS)
async def test_authorization_on_postgres(postgres_scene: Scene, operation: str, who: Who) -> None:
    await check_cell(postgres_scene, operation, who)


# --- the table covers the app -----------------------------------------------------------


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves; ``WS`` for WebSockets."""
    routes: set[tuple[str, str]] = set()
    # FastAPI keeps included routers nested in `app.routes`; this flattens them.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path
        assert path is not None, route
        if path in UNLISTED_ROUTES:
            continue
        if isinstance(route, APIWebSocketRoute):
            routes.add(("WS", path))
        elif isinstance(route, APIRoute):
            routes.update((method, path) for method in route.methods or ())
        else:
            pytest.fail(f"route {path} is neither an API route nor a WebSocket route")
    return routes


def test_every_route_has_a_row(tmp_path: Path) -> None:
    app = create_app(_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path))
    covered = {(spec.method, spec.route) for spec in OPERATIONS.values()}

    routes = served_routes(app)

    assert routes - covered == set(), "routes without an operation and a row in TABLE"
    assert covered - routes == set(), "operations for routes the app does not serve"
    assert ("WS", "/v1/rooms/{room_id}/stream") in routes


def test_every_operation_has_exactly_one_row() -> None:
    assert sorted(TABLE) == sorted(OPERATIONS)
