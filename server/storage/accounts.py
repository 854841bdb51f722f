"""Accounts, enrollment tokens, devices and their encryption keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.rows import from_row
from server.storage.tables import (
    access_tokens,
    accounts,
    devices,
    directory_entries,
    encryption_keys,
    enrollment_tokens,
)


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as stored."""

    id: str
    role: str
    name: str
    status: str
    account_key: bytes | None
    registration: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device as stored."""

    id: str
    account_id: str
    signing_key: bytes
    cert: str
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class EncryptionKeyRow:
    """A device encryption key as stored."""

    id: str
    device_id: str
    public_key: bytes
    cert: str
    not_after: int
    created_at: int


@dataclass(frozen=True, slots=True)
class DirectoryEntryRow:
    """The statement behind one directory log leaf."""

    idx: int
    account_id: str
    kind: str
    statement: str


def _live_token(now: int) -> tuple[ColumnElement[bool], ...]:
    """An enrollment token that can still be redeemed: unused and unexpired."""
    return (enrollment_tokens.c.used_at.is_(None), enrollment_tokens.c.expires_at > now)


class AccountRepository:
    """Reads and writes accounts and everything hanging off them."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def create_pending(
        self, *, account_id: str, role: str, name: str, created_by: str | None, now: int
    ) -> None:
        """Insert an account that has not enrolled yet."""
        await self.conn.execute(
            accounts.insert().values(
                id=account_id,
                role=role,
                name=name,
                status="pending",
                created_by=created_by,
                created_at=now,
            )
        )

    async def get(self, account_id: str) -> AccountRow | None:
        """One account by id."""
        row = (await self.conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
        return None if row is None else from_row(AccountRow, row)

    async def by_account_key(self, account_key: bytes) -> AccountRow | None:
        """The account registered with this account key, if any."""
        query = select(accounts).where(accounts.c.account_key == account_key)
        row = (await self.conn.execute(query)).first()
        return None if row is None else from_row(AccountRow, row)

    async def list_active(self, role: str | None = None) -> list[AccountRow]:
        """Every enrolled account, optionally of one role, by name."""
        query = select(accounts).where(accounts.c.status == "active")
        if role is not None:
            query = query.where(accounts.c.role == role)
        rows = await self.conn.execute(query.order_by(accounts.c.name, accounts.c.id))
        return [from_row(AccountRow, r) for r in rows]

    async def list_all(self) -> list[tuple[AccountRow, str | None, int]]:
        """Every account, pending and revoked ones too, with who invited it and how many
        active devices it has, oldest first."""
        live = (
            select(devices.c.account_id, func.count().label("n"))
            .where(devices.c.revoked_at.is_(None))
            .group_by(devices.c.account_id)
            .subquery()
        )
        query = (
            select(accounts, func.coalesce(live.c.n, 0))
            .outerjoin(live, live.c.account_id == accounts.c.id)
            .order_by(accounts.c.created_at, accounts.c.id)
        )
        rows = await self.conn.execute(query)
        return [(from_row(AccountRow, r), r._mapping["created_by"], int(r[-1])) for r in rows]

    async def pending_invites(self, now: int) -> list[tuple[AccountRow, str | None, int]]:
        """Pending accounts with an unused, unexpired enrollment token: the account, who
        invited it, and when the token expires (never the token, which is only a hash)."""
        query = (
            select(accounts, enrollment_tokens.c.expires_at.label("token_expires_at"))
            .join(enrollment_tokens, enrollment_tokens.c.account_id == accounts.c.id)
            .where(
                accounts.c.status == "pending",
                *_live_token(now),
            )
            .order_by(accounts.c.created_at, accounts.c.id)
        )
        rows = await self.conn.execute(query)
        return [
            (from_row(AccountRow, r), r._mapping["created_by"], r._mapping["token_expires_at"])
            for r in rows
        ]

    async def cancel_invite(self, account_id: str, now: int) -> None:
        """End a pending account's enrollment tokens (they expire now) and mark it
        ``cancelled``, so it can never enroll."""
        await self.conn.execute(
            update(enrollment_tokens)
            .where(
                enrollment_tokens.c.account_id == account_id,
                *_live_token(now),
            )
            .values(expires_at=now)
        )
        await self.set_status(account_id, "cancelled")

    async def activate(self, account_id: str, *, account_key: bytes, registration: str) -> None:
        """Record the account key and registration statement of a pending account."""
        await self.conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(status="active", account_key=account_key, registration=registration)
        )

    async def add_token(
        self, *, token_hash: bytes, account_id: str, expires_at: int, now: int
    ) -> None:
        """Store an enrollment token's hash."""
        await self.conn.execute(
            enrollment_tokens.insert().values(
                token_hash=token_hash, account_id=account_id, expires_at=expires_at, created_at=now
            )
        )

    async def token_account(self, token_hash: bytes, now: int) -> str | None:
        """The account of an unused, unexpired token, without using it."""
        row = (
            await self.conn.execute(
                select(enrollment_tokens.c.account_id).where(
                    enrollment_tokens.c.token_hash == token_hash,
                    *_live_token(now),
                )
            )
        ).first()
        return None if row is None else str(row[0])

    async def consume_token(self, token_hash: bytes, now: int) -> str | None:
        """Mark an unused, unexpired token used; return its account id, or None."""
        result = await self.conn.execute(
            update(enrollment_tokens)
            .where(
                enrollment_tokens.c.token_hash == token_hash,
                *_live_token(now),
            )
            .values(used_at=now)
            .returning(enrollment_tokens.c.account_id)
        )
        row = result.first()
        return None if row is None else str(row[0])

    async def add_device(
        self, *, device_id: str, account_id: str, signing_key: bytes, cert: str, now: int
    ) -> None:
        """Store a certified device."""
        await self.conn.execute(
            devices.insert().values(
                id=device_id,
                account_id=account_id,
                signing_key=signing_key,
                cert=cert,
                created_at=now,
            )
        )

    async def device(self, device_id: str) -> DeviceRow | None:
        """One device by id."""
        row = (await self.conn.execute(select(devices).where(devices.c.id == device_id))).first()
        return None if row is None else from_row(DeviceRow, row)

    async def devices_of(self, account_ids: list[str]) -> list[DeviceRow]:
        """Active devices of the given accounts."""
        rows = await self.conn.execute(
            select(devices)
            .where(devices.c.account_id.in_(account_ids), devices.c.revoked_at.is_(None))
            .order_by(devices.c.id)
        )
        return [from_row(DeviceRow, r) for r in rows]

    async def revoke_devices(self, device_ids: list[str], now: int) -> None:
        """Mark devices revoked and revoke their live bearer tokens, in the caller's
        transaction: from its commit on, `authenticate` refuses them."""
        await self.conn.execute(
            update(devices)
            .where(devices.c.id.in_(device_ids), devices.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await self.conn.execute(
            update(access_tokens)
            .where(access_tokens.c.device_id.in_(device_ids), access_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def set_status(self, account_id: str, status: str) -> None:
        """Change an account's status (``revoked`` by the operator)."""
        await self.conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(status=status)
        )

    async def revoked_among(self, device_ids: list[str]) -> list[str]:
        """Which of these devices are revoked (or gone)."""
        rows = await self.conn.execute(
            select(devices.c.id).where(devices.c.id.in_(device_ids), devices.c.revoked_at.is_(None))
        )
        active = {r[0] for r in rows}
        return sorted(set(device_ids) - active)

    async def add_encryption_key(
        self,
        *,
        key_id: str,
        device_id: str,
        public_key: bytes,
        cert: str,
        not_after: int,
        now: int,
    ) -> None:
        """Store a device's new certified encryption key."""
        await self.conn.execute(
            encryption_keys.insert().values(
                id=key_id,
                device_id=device_id,
                public_key=public_key,
                cert=cert,
                not_after=not_after,
                created_at=now,
            )
        )

    async def encryption_key(self, key_id: str) -> EncryptionKeyRow | None:
        """One encryption key by id."""
        row = (
            await self.conn.execute(select(encryption_keys).where(encryption_keys.c.id == key_id))
        ).first()
        return None if row is None else from_row(EncryptionKeyRow, row)

    async def current_encryption_keys(self, device_ids: list[str]) -> dict[str, EncryptionKeyRow]:
        """The newest encryption key of each device."""
        rows = await self.conn.execute(
            select(encryption_keys)
            .where(encryption_keys.c.device_id.in_(device_ids))
            .order_by(encryption_keys.c.created_at, encryption_keys.c.id)
        )
        newest: dict[str, EncryptionKeyRow] = {}
        for r in rows:
            newest[r._mapping["device_id"]] = from_row(EncryptionKeyRow, r)
        return newest

    async def add_directory_entry(self, entry: DirectoryEntryRow) -> None:
        """Record which statement a directory leaf logs."""
        await self.conn.execute(
            directory_entries.insert().values(
                idx=entry.idx,
                account_id=entry.account_id,
                kind=entry.kind,
                statement=entry.statement,
            )
        )

    async def directory_entries_of(self, account_id: str) -> list[DirectoryEntryRow]:
        """Every directory leaf about one account, in log order."""
        rows = await self.conn.execute(
            select(directory_entries)
            .where(directory_entries.c.account_id == account_id)
            .order_by(directory_entries.c.idx)
        )
        return [from_row(DirectoryEntryRow, r) for r in rows]

    async def directory_entries(self, start: int, end: int) -> list[DirectoryEntryRow]:
        """Directory leaves' statements with ``start <= idx < end``."""
        rows = await self.conn.execute(
            select(directory_entries)
            .where(directory_entries.c.idx >= start, directory_entries.c.idx < end)
            .order_by(directory_entries.c.idx)
        )
        return [from_row(DirectoryEntryRow, r) for r in rows]
