"""What every service shares: the caller, the clock, secret hashing, and the checks
every logged act (message, moderation, instrument) passes before it is judged."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeGuard

from client_sdk.protocol.encoding import b64d, sha256
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.models import Role
from server.errors import Conflict, InvalidInput, MalformedInput
from server.storage.events import EventRow

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


def check_submitted_by_signer(
    principal: Principal, room_id: str, *, act_room: str, signer_device: str, what: str
) -> None:
    """A signed act is for the room of the route it was posted to, and is posted by the
    device that signed it (so no one submits another device's act as their own)."""
    if act_room != room_id:
        raise InvalidInput(f"the {what} is for another room")
    if signer_device != principal.device_id:
        raise InvalidInput(f"a {what} must be signed by the device that submits it")


def is_retry(
    earlier: EventRow | None, payload_hash: bytes, what: str, *, device: str | None = None
) -> TypeGuard[EventRow]:
    """Whether `earlier`, the event already logged under this act's id, is this same act
    sent again (answered with its first result); Conflict if the id was used for another
    act, or (given `device`) by another device."""
    if earlier is None:
        return False
    if earlier.payload_hash != payload_hash or (
        device is not None and earlier.sender_device != device
    ):
        raise Conflict(f"this {what} id was already used for another {what}")
    return True


def check_roster_version(signed_at: int, current: int) -> None:
    """An act names the roster version its signer saw; a newer one makes it stale (the
    signer refreshes and signs again)."""
    if signed_at != current:
        raise Conflict(f"stale roster version {signed_at}; the room is at {current}")
