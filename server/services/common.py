"""What every service shares: the caller, the clock and secret hashing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from client_sdk.protocol.encoding import b64d, sha256
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.models import Role
from server.errors import InvalidInput, MalformedInput

Clock = Callable[[], int]
"""Returns the current time in milliseconds since the epoch; injectable in tests."""


def system_clock() -> int:
    """Wall-clock milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a device of an account."""

    account_id: str
    device_id: str
    role: Role


def secret_hash(secret: str) -> bytes:
    """How tokens and nonces are stored: only their SHA-256."""
    return sha256(b"parley/v1/secret\x00" + secret.encode("utf-8"))


def decode_b64(value: str, what: str) -> bytes:
    """Decode base64url input, mapping failure to `MalformedInput`."""
    try:
        return b64d(value)
    except ProtocolError as exc:
        raise MalformedInput(f"{what}: {exc}") from exc


def decode_key(value: str, what: str, length: int) -> bytes:
    """Decode a fixed-length key, mapping failure to `InvalidInput`/`MalformedInput`."""
    raw = decode_b64(value, what)
    if len(raw) != length:
        raise InvalidInput(f"{what} must be {length} bytes")
    return raw
