"""Log heads and entries. Entries are append-only: the database refuses UPDATE
and DELETE on them (triggers created by the migrations)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.rows import from_row
from server.storage.tables import log_entries, logs


@dataclass(frozen=True, slots=True)
class LogHead:
    """A log's identity and current size."""

    id: str
    origin: str
    size: int
    created_at: int


@dataclass(frozen=True, slots=True)
class LogEntryRow:
    """One leaf of a log."""

    log_id: str
    idx: int
    leaf: bytes
    leaf_hash: bytes


class LogRepository:
    """Log heads (locked while appending) and their entries."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def create(self, *, log_id: str, origin: str, now: int) -> None:
        """Create an empty log."""
        await self.conn.execute(
            logs.insert().values(id=log_id, origin=origin, size=0, created_at=now)
        )

    async def head(self, log_id: str, *, for_update: bool = False) -> LogHead | None:
        """A log's head row; `for_update` locks it until the transaction ends."""
        query = select(logs).where(logs.c.id == log_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return None if row is None else from_row(LogHead, row)

    async def append(self, entry: LogEntryRow) -> None:
        """Insert one entry and advance the head (caller holds the head lock)."""
        await self.conn.execute(
            log_entries.insert().values(
                log_id=entry.log_id, idx=entry.idx, leaf=entry.leaf, leaf_hash=entry.leaf_hash
            )
        )
        await self.conn.execute(
            update(logs).where(logs.c.id == entry.log_id).values(size=entry.idx + 1)
        )

    async def entries(self, log_id: str, *, start: int, end: int) -> list[LogEntryRow]:
        """Entries with ``start <= idx < end``, in order."""
        rows = await self.conn.execute(
            select(log_entries)
            .where(
                log_entries.c.log_id == log_id, log_entries.c.idx >= start, log_entries.c.idx < end
            )
            .order_by(log_entries.c.idx)
        )
        return [from_row(LogEntryRow, r) for r in rows]
