"""Appending to a log inside the caller's transaction.

Appends to one log are serialized by the log head's row lock (PostgreSQL) or
the single SQLite writer; the leaf is integrated in the same transaction as
the change it records, so both land or neither does.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.leaf import MAX_LEAF_BYTES, LogLeaf
from client_sdk.protocol.merkle import leaf_hash
from server.errors import NotFound, TooLarge
from server.storage.logs import LogEntryRow, LogRepository


@dataclass(frozen=True, slots=True)
class Appended:
    """Where a leaf landed."""

    log_id: str
    index: int
    leaf: bytes
    leaf_hash: bytes


async def append_leaf(
    conn: AsyncConnection,
    log_id: str,
    *,
    type: str,
    actor_device: str,
    payload_hash: bytes,
    signature: bytes,
    server_time: int,
) -> Appended:
    """Append one leaf to `log_id` and return where it landed."""
    repo = LogRepository(conn)
    head = await repo.head(log_id, for_update=True)
    if head is None:
        raise NotFound(f"no log {log_id}")
    leaf = LogLeaf(
        origin=head.origin,
        index=head.size,
        type=type,
        actor_device=actor_device,
        server_time=server_time,
        payload_sha256=b64e(payload_hash),
        signature=b64e(signature),
    ).to_bytes()
    if len(leaf) > MAX_LEAF_BYTES:
        raise TooLarge("log leaf larger than 64 KiB")
    hashed = leaf_hash(leaf)
    await repo.append(LogEntryRow(log_id=log_id, idx=head.size, leaf=leaf, leaf_hash=hashed))
    return Appended(log_id=log_id, index=head.size, leaf=leaf, leaf_hash=hashed)
