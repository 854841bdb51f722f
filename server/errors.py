"""The server's domain errors. They carry a code and a message, never an HTTP status;
`server.api.errors` alone maps them to statuses and the JSON error body.

    DomainError
    ├── MalformedInput      input that does not parse
    ├── NotAuthenticated    no, bad or expired credentials
    ├── NotAllowed          authenticated, but not permitted
    ├── NotFound            no such thing (or not visible to the caller)
    ├── Conflict            clashes with current state (closed room, stale roster, duplicate)
    ├── TooLarge            over a configured size limit
    ├── InvalidInput        parses, but fails a check (signature, recipients, ...)
    └── RateLimited         too many requests

    StartupError            the server (or an operator command) cannot start: the
                            configuration, the database or the log key; one line for
                            the operator, exit code 2
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class MalformedInput(DomainError):
    """Input that does not parse."""

    code = "malformed"


class NotAuthenticated(DomainError):
    """Missing, invalid or expired credentials."""

    code = "unauthenticated"


class NotAllowed(DomainError):
    """The caller may not do this."""

    code = "forbidden"


class NotFound(DomainError):
    """No such resource, or not visible to the caller."""

    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state."""

    code = "conflict"


class TooLarge(DomainError):
    """Over a configured size limit."""

    code = "too_large"


class InvalidInput(DomainError):
    """Well-formed input that fails a check."""

    code = "invalid"


class RateLimited(DomainError):
    """Too many requests from one device or address; `retry_after` says in how many
    seconds one more would be accepted, when that is known."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StartupError(Exception):
    """The server, or an operator command, cannot start: a setting, the database or the
    log key is wrong. The message is one line that says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
