"""The JSON error body every failed request is answered with (docs/design.md §9)."""

from __future__ import annotations

from client_sdk.protocol.wire.base import Answer


class ErrorDetail(Answer):
    """A machine-readable code (``not_found``, ``conflict``...) and a sentence for people."""

    code: str
    message: str


class ErrorBody(Answer):
    """``{"error": {"code": ..., "message": ...}}``, with any HTTP status from 400 up."""

    error: ErrorDetail


def error_body(code: str, message: str) -> ErrorBody:
    """The error body for `code` and `message`."""
    return ErrorBody(error=ErrorDetail(code=code, message=message))
