"""Device link requests: a new device's keys waiting for an existing device's approval."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.rows import from_row
from server.storage.tables import device_links


@dataclass(frozen=True, slots=True)
class DeviceLinkRow:
    """A link request as stored."""

    id: str
    account_id: str
    device_id: str
    signing_key: bytes
    encryption_key: bytes
    status: str
    created_at: int
    expires_at: int
    approved_by: str | None
    approved_at: int | None
    grant: str | None


class DeviceLinkRepository:
    """Reads and writes link requests."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(self, row: DeviceLinkRow) -> None:
        """Store a new pending request."""
        await self.conn.execute(
            device_links.insert().values(
                id=row.id,
                account_id=row.account_id,
                device_id=row.device_id,
                signing_key=row.signing_key,
                encryption_key=row.encryption_key,
                status=row.status,
                created_at=row.created_at,
                expires_at=row.expires_at,
            )
        )

    async def get(self, link_id: str) -> DeviceLinkRow | None:
        """One request by id."""
        query = select(device_links).where(device_links.c.id == link_id)
        row = (await self.conn.execute(query)).first()
        return None if row is None else from_row(DeviceLinkRow, row)

    async def pending(self, account_id: str, now: int) -> list[DeviceLinkRow]:
        """An account's unexpired pending requests, oldest first."""
        rows = await self.conn.execute(
            select(device_links)
            .where(
                device_links.c.account_id == account_id,
                device_links.c.status == "pending",
                device_links.c.expires_at > now,
            )
            .order_by(device_links.c.created_at, device_links.c.id)
        )
        return [from_row(DeviceLinkRow, r) for r in rows]

    async def count_pending(self, account_id: str, now: int) -> int:
        """How many unexpired requests wait for this account."""
        query = select(func.count()).where(
            device_links.c.account_id == account_id,
            device_links.c.status == "pending",
            device_links.c.expires_at > now,
        )
        return int((await self.conn.execute(query)).scalar_one())

    async def approve(self, link_id: str, *, approved_by: str, now: int, grant: str) -> bool:
        """Mark a pending, unexpired request approved; False if it no longer is one."""
        result = await self.conn.execute(
            update(device_links)
            .where(
                device_links.c.id == link_id,
                device_links.c.status == "pending",
                device_links.c.expires_at > now,
            )
            .values(status="approved", approved_by=approved_by, approved_at=now, grant=grant)
        )
        return result.rowcount == 1

    async def purge_expired(self, now: int) -> None:
        """Forget pending requests that expired."""
        await self.conn.execute(
            device_links.delete().where(
                device_links.c.status == "pending", device_links.c.expires_at <= now
            )
        )
