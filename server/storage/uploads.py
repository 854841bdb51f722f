"""Uploads in progress and the blobs of each room (docs/design.md §7)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.rows import from_row
from server.storage.tables import accounts, blobs, uploads


@dataclass(frozen=True, slots=True)
class UploadRow:
    """One unfinished upload."""

    id: str
    room_id: str
    account_id: str
    size: int
    chunk_size: int
    ciphertext_size: int
    received_chunks: int
    received_bytes: int
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class BlobRow:
    """One stored blob of a room."""

    room_id: str
    blob: str
    account_id: str
    size: int
    created_at: int


class UploadRepository:
    """Reads and writes uploads and blobs; never commits."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def lock_account(self, account_id: str) -> None:
        """Serialize quota checks of one account (a row lock on PostgreSQL; SQLite has
        one writer anyway)."""
        await self.conn.execute(
            select(accounts.c.id).where(accounts.c.id == account_id).with_for_update()
        )

    async def used_bytes(self, account_id: str) -> int:
        """Ciphertext bytes the account's blobs and unfinished uploads take up."""
        stored = await self.conn.scalar(
            select(func.coalesce(func.sum(blobs.c.size), 0)).where(blobs.c.account_id == account_id)
        )
        pending = await self.conn.scalar(
            select(func.coalesce(func.sum(uploads.c.ciphertext_size), 0)).where(
                uploads.c.account_id == account_id
            )
        )
        return int(stored or 0) + int(pending or 0)

    async def add(self, row: UploadRow) -> None:
        """Insert a new upload."""
        await self.conn.execute(
            insert(uploads).values(
                id=row.id,
                room_id=row.room_id,
                account_id=row.account_id,
                size=row.size,
                chunk_size=row.chunk_size,
                ciphertext_size=row.ciphertext_size,
                received_chunks=row.received_chunks,
                received_bytes=row.received_bytes,
                created_at=row.created_at,
                expires_at=row.expires_at,
            )
        )

    async def get(self, upload_id: str) -> UploadRow | None:
        """One upload by id."""
        row = (await self.conn.execute(select(uploads).where(uploads.c.id == upload_id))).first()
        return None if row is None else from_row(UploadRow, row)

    async def advance(self, upload_id: str, *, chunk: int, length: int, expires_at: int) -> bool:
        """Record chunk `chunk` (of `length` bytes) as received, if it is the next one;
        False if it is not (another request got there first)."""
        result = await self.conn.execute(
            update(uploads)
            .where(uploads.c.id == upload_id, uploads.c.received_chunks == chunk)
            .values(
                received_chunks=chunk + 1,
                received_bytes=uploads.c.received_bytes + length,
                expires_at=expires_at,
            )
        )
        return result.rowcount == 1

    async def remove(self, upload_id: str) -> None:
        """Delete an upload."""
        await self.conn.execute(delete(uploads).where(uploads.c.id == upload_id))

    async def expired(self, now: int, limit: int) -> list[str]:
        """Ids of uploads that expired before `now`."""
        rows = await self.conn.execute(
            select(uploads.c.id).where(uploads.c.expires_at < now).limit(limit)
        )
        return [str(r[0]) for r in rows]

    async def remove_many(self, upload_ids: list[str]) -> None:
        """Delete these uploads."""
        await self.conn.execute(delete(uploads).where(uploads.c.id.in_(upload_ids)))

    async def all_ids(self) -> set[str]:
        """Every unfinished upload's id."""
        return {str(r[0]) for r in await self.conn.execute(select(uploads.c.id))}

    async def blob(self, room_id: str, blob: str) -> BlobRow | None:
        """A room's blob by name."""
        row = (
            await self.conn.execute(
                select(blobs).where(blobs.c.room_id == room_id, blobs.c.blob == blob)
            )
        ).first()
        return None if row is None else from_row(BlobRow, row)

    async def add_blob(self, row: BlobRow) -> None:
        """Insert a blob."""
        await self.conn.execute(
            insert(blobs).values(
                room_id=row.room_id,
                blob=row.blob,
                account_id=row.account_id,
                size=row.size,
                created_at=row.created_at,
            )
        )
