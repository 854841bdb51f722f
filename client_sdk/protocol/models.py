"""Base model for everything Parley parses, signs or hashes.

Frozen, strict about unknown fields: an unknown field in something that is
signed or hashed must be an error, never silently dropped.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Strict, StringConstraints

from client_sdk.protocol.enums import Role as Role
from client_sdk.protocol.enums import Side as Side


class WireModel(BaseModel):
    """A frozen pydantic model that forbids unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


B64_PATTERN = r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
"""Canonical unpadded base64url, exactly what `encoding.b64d` accepts: no length of
4k+1, and the unused bits of the last character zero."""

B64 = Annotated[str, StringConstraints(pattern=B64_PATTERN, max_length=1_500_000)]
"""Unpadded base64url text (decode with `encoding.b64d`)."""

SHA256_B64_PATTERN = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"
"""A SHA-256 hash in canonical unpadded base64url: 43 characters, the last with its two
unused bits zero."""

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
"""An identifier: account, device, room, message or key id."""

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""A human-readable name or title."""

JSON_SAFE_INT = 2**53 - 1


def _json_safe(value: int) -> int:
    if not -JSON_SAFE_INT <= value <= JSON_SAFE_INT:
        raise ValueError("integer outside the range canonical JSON allows")
    return value


Int = Annotated[int, Strict(), AfterValidator(_json_safe)]
"""An integer that must arrive as a JSON integer (never a string, bool or float)
and stay within the range RFC 8785 can canonicalise."""
