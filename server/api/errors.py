"""The one place domain errors become HTTP statuses, JSON bodies (docs/design.md §9) and
WebSocket close codes."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from client_sdk.protocol.wire.errors import error_body as wire_error_body
from client_sdk.protocol.wire.stream import CloseCode
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


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON error body every failure uses (`client_sdk.protocol.wire.errors.ErrorBody`)."""
    return wire_error_body(code, message).model_dump(mode="json")


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


async def _domain(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = _headers(exc)
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=status_for(exc), headers=headers
    )


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(error_body("malformed", "request body is not valid JSON"), 400)
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    # Drop the leading "body" marker only: a nested field may itself be named "body".
    where = ".".join(str(p) for p in (loc[1:] if loc[:1] == ("body",) else loc))
    message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
    return JSONResponse(error_body("invalid", message), 422)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the JSON error body."""
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
