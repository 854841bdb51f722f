"""The one place domain errors become HTTP statuses, JSON bodies (docs/design.md §9) and
WebSocket close codes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from client_sdk.protocol.models import B64_PATTERN, SHA256_B64_PATTERN
from client_sdk.protocol.wire.errors import ErrorBody
from client_sdk.protocol.wire.errors import error_body as wire_error_body
from client_sdk.protocol.wire.stream import CloseCode
from server.api.observe import request_id
from server.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    MalformedInput,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    RateLimited,
    TooLarge,
)

STATUS: dict[type[DomainError], int] = {
    MalformedInput: 400,
    NotAuthenticated: 401,
    NotAllowed: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    InvalidInput: 422,
    RateLimited: 429,
}

WS_CLOSE: dict[type[DomainError], CloseCode] = {
    MalformedInput: CloseCode.MALFORMED,
    NotAuthenticated: CloseCode.UNAUTHENTICATED,
    NotAllowed: CloseCode.FORBIDDEN,
    NotFound: CloseCode.NOT_FOUND,
    Conflict: CloseCode.CONFLICT,
    TooLarge: CloseCode.TOO_LARGE,
    InvalidInput: CloseCode.INVALID,
    RateLimited: CloseCode.RATE_LIMITED,
}

_HTTP_CODES = {
    400: "malformed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
}


_MEANING = {
    400: "Malformed: the body is not JSON, or a value does not parse.",
    401: "No, a bad or an expired bearer token (or credentials that do not verify).",
    403: "Authenticated, but not permitted.",
    404: "No such thing, or not visible to the caller.",
    409: "Clashes with the current state (a closed room, a stale version, a duplicate).",
    413: "Over a size limit (the request body, a document, a quota).",
    422: "Parses, but a value fails a check (a field, a signature, a range).",
    429: "Too many requests from this device or address; Retry-After says when to retry.",
}

AUTHENTICATED = (401, 429)
"""What any route behind a bearer token can answer."""
PUBLIC = (429,)
"""What any route that needs no token can answer (limited per address)."""
JSON_BODY = (400, 413, 422)
"""What any route with a JSON body can answer."""
PARAMETERS = (422,)
"""What any route with path or query parameters can answer."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of the error statuses a route can answer, each with
    the JSON error body (`ErrorBody`)."""
    return {
        status: {"model": ErrorBody, "description": _MEANING[status], **_HEADERS.get(status, {})}
        for status in sorted(set(statuses))
    }


_HEADERS: dict[int, dict[str, Any]] = {
    401: {"headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    429: {
        "headers": {
            "Retry-After": {
                "description": "Seconds until one more request would be accepted.",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    },
}


def content_response(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of a 200 that is not JSON (a signed note, a tile,
    a blob's ciphertext); pair it with ``response_class=Response``."""
    schema = {"type": "string"} if media_type.startswith("text/") else BINARY_SCHEMA
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


BINARY_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}


def error_body(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    """The JSON error body every failure uses (`client_sdk.protocol.wire.errors.ErrorBody`)."""
    return wire_error_body(code, message, request_id).model_dump(mode="json")


def error_response(
    connection: HTTPConnection,
    code: str,
    message: str,
    status: int,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON error answer to `connection`'s request, carrying its request id."""
    body = error_body(code, message, request_id(connection.scope))
    return JSONResponse(body, status_code=status, headers=headers)


def status_for(error: DomainError) -> int:
    """The HTTP status of a domain error."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def ws_close_code(error: DomainError) -> CloseCode:
    """The WebSocket close code of a domain error."""
    for cls in type(error).__mro__:
        if cls in WS_CLOSE:
            return WS_CLOSE[cls]
    return CloseCode.MALFORMED


def _headers(error: DomainError) -> dict[str, str] | None:
    if isinstance(error, NotAuthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(error, RateLimited) and error.retry_after is not None:
        return {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
    return None


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return error_response(request, exc.code, exc.message, status_for(exc), _headers(exc))


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(request, "malformed", "request body is not valid JSON", 400)
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    # Drop the leading "body" marker only: a nested field may itself be named "body".
    where = ".".join(str(p) for p in (loc[1:] if loc[:1] == ("body",) else loc))
    what = first.get("msg", "invalid")
    if first.get("type") == "string_pattern_mismatch" and first.get("ctx", {}).get("pattern") in (
        B64_PATTERN,
        SHA256_B64_PATTERN,
    ):
        what = "not canonical unpadded base64url"  # rather than the pattern itself
    message = f"{where}: {what}" if where else str(what)
    return error_response(request, "invalid", message, 422)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(request, code, str(exc.detail), exc.status_code, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the JSON error body."""
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
