"""Log heads and entries. Entries are append-only: the database refuses UPDATE
and DELETE on them (triggers created by the migrations)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.rows import from_row
from server.storage.tables import (
    checkpoints,
    cosignatures,
    log_entries,
    log_nodes,
    logs,
    witnesses,
)


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


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """A signed checkpoint."""

    log_id: str
    size: int
    root: bytes
    note: str
    created_at: int


@dataclass(frozen=True, slots=True)
class CosignatureRow:
    """A witness's cosignature of one checkpoint."""

    log_id: str
    size: int
    witness: str
    line: str
    timestamp: int
    created_at: int


@dataclass(frozen=True, slots=True)
class WitnessRow:
    """A registered witness key."""

    name: str
    vkey: str
    account_id: str
    created_at: int


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

    async def entry_by_hash(self, log_id: str, leaf_hash: bytes) -> LogEntryRow | None:
        """The first entry with this leaf hash."""
        row = (
            await self.conn.execute(
                select(log_entries)
                .where(log_entries.c.log_id == log_id, log_entries.c.leaf_hash == leaf_hash)
                .order_by(log_entries.c.idx)
                .limit(1)
            )
        ).first()
        return None if row is None else from_row(LogEntryRow, row)

    async def nodes(self, log_id: str, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored subtree hashes by (level, index); missing keys are absent."""
        if not keys:
            return {}
        found: dict[tuple[int, int], bytes] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            # Grouped by level so that SQLite seeks the primary key; it cannot use it for
            # `(level, idx) IN (VALUES ...)` and would scan every node of the log.
            by_level: dict[int, list[int]] = {}
            for level, idx in chunk:
                by_level.setdefault(level, []).append(idx)
            rows = await self.conn.execute(
                select(log_nodes.c.level, log_nodes.c.idx, log_nodes.c.hash).where(
                    or_(
                        *(
                            and_(
                                log_nodes.c.log_id == log_id,
                                log_nodes.c.level == level,
                                log_nodes.c.idx.in_(indexes),
                            )
                            for level, indexes in by_level.items()
                        )
                    )
                )
            )
            for level, idx, hashed in rows:
                found[(int(level), int(idx))] = bytes(hashed)
        return found

    async def node_range(self, log_id: str, level: int, start: int, end: int) -> list[bytes]:
        """Hashes at `level` with ``start <= index < end``, in order."""
        rows = await self.conn.execute(
            select(log_nodes.c.hash)
            .where(
                log_nodes.c.log_id == log_id,
                log_nodes.c.level == level,
                log_nodes.c.idx >= start,
                log_nodes.c.idx < end,
            )
            .order_by(log_nodes.c.idx)
        )
        return [bytes(r[0]) for r in rows]

    async def add_nodes(self, log_id: str, nodes: list[tuple[int, int, bytes]]) -> None:
        """Store newly completed subtree hashes."""
        if nodes:
            await self.conn.execute(
                log_nodes.insert(),
                [{"log_id": log_id, "level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes],
            )

    async def add_checkpoint(self, row: CheckpointRow) -> None:
        """Store a signed checkpoint (one per size, ever)."""
        await self.conn.execute(
            checkpoints.insert().values(
                log_id=row.log_id,
                size=row.size,
                root=row.root,
                note=row.note,
                created_at=row.created_at,
            )
        )

    async def checkpoint(self, log_id: str, size: int | None = None) -> CheckpointRow | None:
        """The checkpoint at `size`, or the newest one."""
        query = select(checkpoints).where(checkpoints.c.log_id == log_id)
        if size is None:
            query = query.order_by(checkpoints.c.size.desc()).limit(1)
        else:
            query = query.where(checkpoints.c.size == size)
        row = (await self.conn.execute(query)).first()
        return None if row is None else from_row(CheckpointRow, row)

    async def add_cosignature(self, row: CosignatureRow) -> None:
        """Store a witness's cosignature."""
        await self.conn.execute(
            cosignatures.insert().values(
                log_id=row.log_id,
                size=row.size,
                witness=row.witness,
                line=row.line,
                timestamp=row.timestamp,
                created_at=row.created_at,
            )
        )

    async def cosignatures(self, log_id: str, size: int) -> list[CosignatureRow]:
        """Every cosignature of the checkpoint at `size`."""
        rows = await self.conn.execute(
            select(cosignatures)
            .where(cosignatures.c.log_id == log_id, cosignatures.c.size == size)
            .order_by(cosignatures.c.witness)
        )
        return [from_row(CosignatureRow, r) for r in rows]

    async def cosigned_sizes(self, log_id: str) -> list[int]:
        """Sizes that have at least one cosignature, newest first."""
        rows = await self.conn.execute(
            select(cosignatures.c.size)
            .where(cosignatures.c.log_id == log_id)
            .distinct()
            .order_by(cosignatures.c.size.desc())
        )
        return [int(r[0]) for r in rows]

    async def add_witness(self, row: WitnessRow) -> None:
        """Register a witness key."""
        await self.conn.execute(
            witnesses.insert().values(
                name=row.name, vkey=row.vkey, account_id=row.account_id, created_at=row.created_at
            )
        )

    async def witness(self, name: str) -> WitnessRow | None:
        """A witness by key name."""
        row = (await self.conn.execute(select(witnesses).where(witnesses.c.name == name))).first()
        return None if row is None else from_row(WitnessRow, row)

    async def witness_list(self) -> list[WitnessRow]:
        """Every registered witness."""
        rows = await self.conn.execute(select(witnesses).order_by(witnesses.c.name))
        return [from_row(WitnessRow, r) for r in rows]
