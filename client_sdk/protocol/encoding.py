"""Byte encodings every signature and hash in Parley depends on.

Canonical JSON is RFC 8785 (JCS); binary values travel as unpadded
base64url (RFC 4648 §5). Decoding is strict: any other alphabet, padding or
non-canonical trailing bits is a `ProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

import rfc8785

from client_sdk.protocol.errors import ProtocolError

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64e(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Decode unpadded base64url strictly; raise `ProtocolError` on anything else."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise ProtocolError("not unpadded base64url")
    padded = text + "=" * (-len(text) % 4)
    try:
        data = base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("not unpadded base64url") from exc
    if b64e(data) != text:
        raise ProtocolError("non-canonical base64url")
    return data


def canonical_json(value: Any) -> bytes:
    """Serialise a JSON value as RFC 8785 canonical bytes."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ProtocolError(f"cannot canonicalise: {exc}") from exc


def parse_json_object(data: bytes) -> dict[str, Any]:
    """Parse bytes as a JSON object, raising `ProtocolError` on anything else."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("not JSON") from exc
    if not isinstance(value, dict):
        raise ProtocolError("not a JSON object")
    return value


def sha256(data: bytes) -> bytes:
    """SHA-256 of `data`."""
    return hashlib.sha256(data).digest()
