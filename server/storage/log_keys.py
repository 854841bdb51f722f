"""The recorded log key, and the signed checkpoints the key check falls back on."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.tables import checkpoints, log_keys, logs


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A stored checkpoint note and the origin of its log."""

    origin: str
    note: str


class LogKeyRepository:
    """Reads and records the public log key this database's checkpoints are signed by."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def recorded(self) -> bytes | None:
        """The recorded public log key, if one was."""
        row = (await self.conn.execute(select(log_keys.c.public_key))).first()
        return None if row is None else bytes(row[0])

    async def record(self, public_key: bytes, now: int) -> None:
        """Record the public log key (once: a second insert fails on the key)."""
        await self.conn.execute(
            log_keys.insert().values(id=1, public_key=public_key, created_at=now)
        )

    async def newest_checkpoint(self) -> SignedCheckpoint | None:
        """The newest checkpoint of any log, with its log's origin."""
        query = (
            select(logs.c.origin, checkpoints.c.note)
            .join(logs, logs.c.id == checkpoints.c.log_id)
            .order_by(checkpoints.c.created_at.desc())
            .limit(1)
        )
        row = (await self.conn.execute(query)).first()
        return None if row is None else SignedCheckpoint(origin=row[0], note=row[1])

    async def origin(self, log_id: str) -> str | None:
        """The stored origin of a log."""
        row = (await self.conn.execute(select(logs.c.origin).where(logs.c.id == log_id))).first()
        return None if row is None else str(row[0])
