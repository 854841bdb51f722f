"""WebSocket close codes come from the one `CloseCode` enum and mirror the HTTP statuses."""

from __future__ import annotations

from client_sdk.protocol.wire.stream import CloseCode
from server.api.errors import STATUS, WS_CLOSE, ws_close_code
from server.errors import DomainError, NotFound, TooLarge


def test_each_stream_refusal_closes_with_the_code_of_its_http_status() -> None:
    for error, code in WS_CLOSE.items():
        assert isinstance(code, CloseCode)
        assert code.http_status == STATUS[error], error.__name__


def test_a_domain_error_closes_with_its_class_code_or_malformed() -> None:
    assert ws_close_code(NotFound("no such room")) is CloseCode.NOT_FOUND
    assert ws_close_code(TooLarge("too big")) is CloseCode.TOO_LARGE
    assert ws_close_code(DomainError("odd")) is CloseCode.MALFORMED
