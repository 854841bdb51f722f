"""The JSON error body every failed request is answered with (docs/design.md §9)."""

from __future__ import annotations

from client_sdk.protocol.wire.base import Answer


class ErrorDetail(Answer):
    """A machine-readable code (``not_found``, ``conflict``...), a sentence for people,
    and the request's id (its ``X-Request-Id``, also in the server's log line)."""

    code: str
    message: str
    request_id: str | None = None


class ErrorBody(Answer):
    """``{"error": {"code": ..., "message": ..., "request_id": ...}}``, with any HTTP
    status from 400 up."""

    error: ErrorDetail


def error_body(code: str, message: str, request_id: str | None = None) -> ErrorBody:
    """The error body for `code` and `message` (of request `request_id`)."""
    return ErrorBody(error=ErrorDetail(code=code, message=message, request_id=request_id))
