"""Login challenges and bearer tokens (both stored only as hashes)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.prepared import Prepared
from server.storage.tables import access_tokens, accounts, devices, login_challenges

_TOKEN_HOLDER = Prepared(
    select(devices.c.id, devices.c.revoked_at, accounts.c.id, accounts.c.role)
    .select_from(
        access_tokens.outerjoin(devices, devices.c.id == access_tokens.c.device_id).outerjoin(
            accounts, accounts.c.id == devices.c.account_id
        )
    )
    .where(
        access_tokens.c.token_hash == bindparam("token_hash"),
        access_tokens.c.revoked_at.is_(None),
        access_tokens.c.expires_at > bindparam("now"),
    )
)


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """Who a live token belongs to; the device and account fields are None if gone."""

    device_id: str | None
    device_revoked_at: int | None
    account_id: str | None
    role: str | None


class SessionRepository:
    """Single-use login challenges and short-lived access tokens."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add_challenge(self, *, nonce_hash: bytes, device_id: str, expires_at: int) -> None:
        """Store a fresh challenge."""
        await self.conn.execute(
            login_challenges.insert().values(
                nonce_hash=nonce_hash, device_id=device_id, expires_at=expires_at
            )
        )

    async def consume_challenge(self, *, nonce_hash: bytes, device_id: str, now: int) -> bool:
        """Remove an unexpired challenge of this device (it is used up); False if there is
        none."""
        result = await self.conn.execute(
            delete(login_challenges).where(
                login_challenges.c.nonce_hash == nonce_hash,
                login_challenges.c.device_id == device_id,
                login_challenges.c.used_at.is_(None),
                login_challenges.c.expires_at > now,
            )
        )
        return result.rowcount == 1

    async def purge_expired(self, now: int, limit: int) -> int:
        """Remove at most `limit` expired challenges and `limit` expired tokens (oldest
        first, found through their expiry index); how many rows went."""
        removed = 0
        for table, key in (
            (login_challenges, login_challenges.c.nonce_hash),
            (access_tokens, access_tokens.c.token_hash),
        ):
            expired = (
                select(key)
                .where(table.c.expires_at <= now)
                .order_by(table.c.expires_at)
                .limit(limit)
            )
            result = await self.conn.execute(delete(table).where(key.in_(expired)))
            removed += result.rowcount
        return removed

    async def add_token(self, *, token_hash: bytes, device_id: str, expires_at: int) -> None:
        """Store a new bearer token's hash."""
        await self.conn.execute(
            access_tokens.insert().values(
                token_hash=token_hash, device_id=device_id, expires_at=expires_at
            )
        )

    async def token_holder(self, token_hash: bytes, now: int) -> TokenHolder | None:
        """The device and account of a live token, in one query (one per request)."""
        row = await _TOKEN_HOLDER.first(self.conn, token_hash=token_hash, now=now)
        if row is None:
            return None
        device_id, revoked_at, account_id, role = row
        return TokenHolder(
            device_id=device_id, device_revoked_at=revoked_at, account_id=account_id, role=role
        )

    async def revoke_token(self, token_hash: bytes, now: int) -> None:
        """Revoke a token (logout)."""
        await self.conn.execute(
            update(access_tokens)
            .where(access_tokens.c.token_hash == token_hash)
            .values(revoked_at=now)
        )
