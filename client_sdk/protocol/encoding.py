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
import secrets
from typing import Any

import rfc8785

from client_sdk.protocol.errors import ProtocolError

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def random_id(size: int = 16) -> str:
    """A fresh random identifier: `size` random bytes, base64url, never starting with
    ``-`` (so it can be given on a command line without being read as an option)."""
    while True:
        text = b64e(secrets.token_bytes(size))
        if not text.startswith("-"):
            return text


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


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"JSON holds {name}, which is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ProtocolError(f"JSON object repeats the member {key!r}")
        result[key] = value
    return result


def loads_strict(data: bytes | str) -> Any:
    """Parse UTF-8 JSON strictly, raising `ProtocolError` for anything else.

    A member named twice, NaN or Infinity, and nesting deeper than the parser
    goes are errors, never a silent choice: two parsers must never read two
    different values from one signed or hashed text.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not UTF-8 JSON ({exc})") from exc
    except RecursionError as exc:
        raise ProtocolError("JSON nested too deeply") from exc


def parse_json_object(data: bytes) -> dict[str, Any]:
    """Parse bytes strictly (`loads_strict`) as a JSON object; `ProtocolError` otherwise."""
    value = loads_strict(data)
    if not isinstance(value, dict):
        raise ProtocolError("not a JSON object")
    return value


def sha256(data: bytes) -> bytes:
    """SHA-256 of `data`."""
    return hashlib.sha256(data).digest()
