"""Log leaves (docs/design.md §6).

A leaf is the RFC 8785 canonical JSON of an event record: the log's origin,
the leaf's index, the event type, the acting device, the server's time, the
hash of the signed payload and the actor's signature over that payload. No
plaintext ever enters a leaf; its Merkle leaf hash is RFC 9162's
``SHA-256(0x00 || leaf)``.
"""

from __future__ import annotations

from pydantic import Field, ValidationError

from client_sdk.protocol.encoding import canonical_json, parse_json_object
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.models import B64, Ident, Int, WireModel

MAX_LEAF_BYTES = 64 * 1024


class LogLeaf(WireModel):
    """One log entry's record."""

    origin: str = Field(min_length=1, max_length=300)
    index: Int = Field(ge=0)
    type: Ident
    actor_device: Ident
    server_time: Int
    payload_sha256: B64
    signature: B64

    def to_bytes(self) -> bytes:
        """The canonical bytes that are hashed into the tree."""
        return canonical_json(self.model_dump(mode="json"))


def parse_leaf(data: bytes) -> LogLeaf:
    """Parse leaf bytes, requiring them to be canonical."""
    if len(data) > MAX_LEAF_BYTES:
        raise ProtocolError("leaf larger than 64 KiB")
    try:
        leaf = LogLeaf.model_validate(parse_json_object(data))
    except ValidationError as exc:
        raise ProtocolError(f"malformed leaf: {exc.errors()[0]['msg']}") from exc
    if leaf.to_bytes() != data:
        raise ProtocolError("leaf is not canonical JSON")
    return leaf


def room_origin(host: str, room_id: str) -> str:
    """The origin (and checkpoint key name) of a room's log."""
    return f"{host}/rooms/{room_id}"


def directory_origin(host: str) -> str:
    """The origin of the server's directory log."""
    return f"{host}/directory"


DIRECTORY_LOG_ID = "directory"
