"""Every exception the SDK raises; catch `ParleyError` to catch them all.

ParleyError
├── ProtocolError              malformed data from the server or a peer
├── VerificationError          a signature, certificate, roster or proof check failed
│   └── UntrustedKeyError      a contact's key is unknown-and-required or changed
├── KeystoreError              no keystore, wrong passphrase, damaged file
├── TransportError             the server could not be reached
└── APIError                   the server refused the request (status, code, message)
    ├── InvalidRequestError    400, 422
    ├── AuthenticationError    401
    ├── PermissionDeniedError  403
    ├── NotFoundError          404
    ├── ConflictError          409 (closed room, stale roster, used id)
    ├── TooLargeError          413
    └── RateLimitedError       429
"""

from __future__ import annotations

from client_sdk.keystore import KeystoreError, UntrustedKeyError
from client_sdk.protocol.errors import ParleyError, ProtocolError, VerificationError

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConflictError",
    "InvalidRequestError",
    "KeystoreError",
    "NotFoundError",
    "ParleyError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitedError",
    "TooLargeError",
    "TransportError",
    "UntrustedKeyError",
    "VerificationError",
    "api_error",
]


class TransportError(ParleyError):
    """The server could not be reached or the connection broke."""


class APIError(ParleyError):
    """The server answered with an error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message


class InvalidRequestError(APIError):
    """The server found the request malformed or invalid (400, 422)."""


class AuthenticationError(APIError):
    """Not authenticated (401)."""


class PermissionDeniedError(APIError):
    """Authenticated but not allowed (403)."""


class NotFoundError(APIError):
    """No such thing, or not visible to this account (404)."""


class ConflictError(APIError):
    """The request clashes with the current state (409)."""


class TooLargeError(APIError):
    """Over a server limit (413)."""


class RateLimitedError(APIError):
    """Too many requests (429)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def api_error(status: int, code: str, message: str) -> APIError:
    """The exception for an error answer."""
    return _BY_STATUS.get(status, APIError)(status, code, message)
