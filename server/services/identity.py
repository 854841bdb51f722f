"""Enrollment, login and the key directory (docs/design.md §3).

Every registration, new device and key rotation is a leaf of the directory
log, appended in the same transaction as the change.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.keys import (
    SigLabel,
    verify_signature,
)
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID, directory_origin
from client_sdk.protocol.models import Role
from client_sdk.protocol.statements import (
    Registration,
    SignedStatement,
    login_payload,
)
from server.config import Settings
from server.errors import Conflict, InvalidInput, NotAllowed, NotAuthenticated, NotFound
from server.log.appender import Appended, LogWriter
from server.log.proofs import ProofReader
from server.realtime.fanout import Fanout
from server.services.common import Clock, Principal, decode_b64, decode_key, secret_hash
from server.services.directory import (
    add_device,
    add_encryption_key,
    append_directory,
    verified_statement,
)
from server.storage.accounts import (
    AccountRepository,
    AccountRow,
    DeviceRow,
    DirectoryEntryRow,
    EncryptionKeyRow,
)
from server.storage.database import Database
from server.storage.logs import LogRepository
from server.storage.sessions import SessionRepository

PURGE_PER_CHALLENGE = 4
"""Expired challenges (and tokens) each new challenge removes on its way."""
SWEEP_BATCH = 1000
"""Rows of each kind one purge transaction removes at most."""
log = logging.getLogger(__name__)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""What a bearer token can look like (they are base64url); anything else is refused unread."""


@dataclass(frozen=True, slots=True)
class EnrollmentTicket:
    """A pending account and the one-time token that enrolls it."""

    account_id: str
    token: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and when it stops working (ms)."""

    token: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class DirectoryProof:
    """An account's directory leaves, each proven included in one checkpoint, and that
    checkpoint's consistency with the size the reader knew (`since`)."""

    entries: list[tuple[DirectoryEntryRow, bytes, list[bytes]]]
    size: int
    checkpoint: str
    since: int
    consistency_proof: list[bytes]


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account with its certified devices and their current encryption keys."""

    account: AccountRow
    devices: list[DeviceRow]
    encryption_keys: dict[str, EncryptionKeyRow]
    directory: DirectoryProof | None = None


class IdentityService:
    """Accounts, devices, keys, enrollment tokens and login sessions."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Clock,
        log: LogWriter,
        *,
        fanout: Fanout | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.log = log
        self.fanout = fanout
        """Closes the streams of what is revoked; None where no stream can be open (the
        operator's commands on SQLite)."""

    async def ensure_directory_log(self) -> None:
        """Create the directory log on first start."""
        async with self.database.write() as conn:
            if await LogRepository(conn).head(DIRECTORY_LOG_ID) is None:
                origin = directory_origin(self.settings.log_origin_host)
                await self.log.create(
                    conn, log_id=DIRECTORY_LOG_ID, origin=origin, now=self.clock()
                )

    async def create_enrollment(
        self, *, role: Role, name: str, created_by: str | None = None
    ) -> EnrollmentTicket:
        """Create a pending account and its one-time enrollment token (operator path)."""
        async with self.database.write() as conn:
            return await self._create_enrollment(conn, role=role, name=name, created_by=created_by)

    async def issue_party_enrollment(self, principal: Principal, name: str) -> EnrollmentTicket:
        """A mediator invites a party."""
        if principal.role is not Role.MEDIATOR:
            raise NotAllowed("only mediators may issue enrollment tokens")
        async with self.database.write() as conn:
            return await self._create_enrollment(
                conn, role=Role.PARTY, name=name, created_by=principal.account_id
            )

    async def _create_enrollment(
        self, conn: AsyncConnection, *, role: Role, name: str, created_by: str | None
    ) -> EnrollmentTicket:
        now = self.clock()
        account_id = uuid.uuid4().hex
        token = b64e(secrets.token_bytes(32))
        expires_at = now + self.settings.enrollment_ttl_seconds * 1000
        repo = AccountRepository(conn)
        await repo.create_pending(
            account_id=account_id, role=role.value, name=name, created_by=created_by, now=now
        )
        await repo.add_token(
            token_hash=secret_hash(token), account_id=account_id, expires_at=expires_at, now=now
        )
        return EnrollmentTicket(account_id=account_id, token=token, expires_at=expires_at)

    async def preview_enrollment(self, token: str) -> AccountRow:
        """The pending account a live token would enroll (the token stays unused)."""
        async with self.database.read() as conn:
            repo = AccountRepository(conn)
            account_id = await repo.token_account(secret_hash(token), self.clock())
            account = None if account_id is None else await repo.get(account_id)
        if account is None or account.status != "pending":
            raise NotAuthenticated("enrollment token is invalid, expired or already used")
        return account

    async def enroll(
        self,
        *,
        token: str,
        registration: SignedStatement,
        device_cert: SignedStatement,
        encryption_key_cert: SignedStatement,
    ) -> tuple[DeviceRow, list[Appended]]:
        """Redeem a token: register the account key, first device and encryption key;
        return the device and the three directory leaves, with their proofs."""
        now = self.clock()
        async with self.database.write() as conn:
            repo = AccountRepository(conn)
            account_id = await repo.consume_token(secret_hash(token), now)
            if account_id is None:
                raise NotAuthenticated("enrollment token is invalid, expired or already used")
            account = await repo.get(account_id)
            if account is None or account.status != "pending":
                raise Conflict("this account has already enrolled")
            account_key = _account_key(registration)
            reg = verified_statement(registration, account_key, Registration)
            if reg.account_id != account_id or reg.role.value != account.role:
                raise InvalidInput("registration does not match the enrollment token's account")
            if reg.name != account.name:
                raise InvalidInput(f"registration name must be {account.name!r}")
            if await repo.by_account_key(account_key) is not None:
                raise Conflict("this account key is already registered")
            await repo.activate(
                account_id,
                account_key=account_key,
                registration=registration.model_dump_json(),
            )
            registered = await append_directory(
                conn, self.log, "registration", registration, account_key, now
            )
            device, certified = await add_device(
                conn, self.log, account_id, account_key, device_cert, now
            )
            keyed = await add_encryption_key(
                conn, self.log, account_id, account_key, device.id, encryption_key_cert, now
            )
            return device, [registered, certified, keyed]

    async def rotate_encryption_key(self, principal: Principal, cert: SignedStatement) -> Appended:
        """Record a device's new encryption key, certified by its account key."""
        now = self.clock()
        async with self.database.write() as conn:
            account = await AccountRepository(conn).get(principal.account_id)
            if account is None or account.account_key is None:
                raise NotAuthenticated("unknown account")
            return await add_encryption_key(
                conn, self.log, account.id, account.account_key, principal.device_id, cert, now
            )

    async def challenge(self, device_id: str) -> tuple[str, int]:
        """Issue a single-use login nonce bound to `device_id`; returns it and its expiry."""
        now = self.clock()
        nonce = b64e(secrets.token_bytes(32))
        expires_at = now + self.settings.challenge_ttl_seconds * 1000
        async with self.database.write() as conn:
            device = await AccountRepository(conn).device(device_id)
            if device is None or device.revoked_at is not None:
                raise NotFound("no such device")
            sessions = SessionRepository(conn)
            # Each new challenge clears a few expired rows: more than it adds, bounded work.
            await sessions.purge_expired(now, PURGE_PER_CHALLENGE)
            await sessions.add_challenge(
                nonce_hash=secret_hash(nonce), device_id=device_id, expires_at=expires_at
            )
        return nonce, expires_at

    async def purge_sessions(self) -> int:
        """Remove every expired login challenge and bearer token, in bounded batches;
        how many rows went."""
        removed = 0
        while True:
            async with self.database.write() as conn:
                batch = await SessionRepository(conn).purge_expired(self.clock(), SWEEP_BATCH)
            removed += batch
            if batch < SWEEP_BATCH:
                return removed

    async def purge_sessions_forever(self) -> None:
        """`purge_sessions` every ``PARLEY_SESSION_SWEEP_SECONDS`` (a background task)."""
        while True:
            await asyncio.sleep(self.settings.session_sweep_seconds)
            try:
                await self.purge_sessions()
            except Exception:  # the next round tries again; the server keeps serving
                log.exception("purging expired challenges and tokens failed")

    async def login(self, *, device_id: str, nonce: str, signature: str) -> AccessToken:
        """Exchange a signed challenge for a short-lived bearer token."""
        now = self.clock()
        sig = decode_b64(signature, "signature")
        async with self.database.write() as conn:
            device = await AccountRepository(conn).device(device_id)
            if device is None or device.revoked_at is not None:
                raise NotAuthenticated("unknown device")
            try:
                verify_signature(
                    device.signing_key, SigLabel.LOGIN, login_payload(device_id, nonce), sig
                )
            except VerificationError as exc:
                raise NotAuthenticated("login signature does not verify") from exc
            sessions = SessionRepository(conn)
            if not await sessions.consume_challenge(
                nonce_hash=secret_hash(nonce), device_id=device_id, now=now
            ):
                raise NotAuthenticated("login challenge is unknown, expired or already used")
            token = b64e(secrets.token_bytes(32))
            expires_at = now + self.settings.token_ttl_seconds * 1000
            await sessions.add_token(
                token_hash=secret_hash(token), device_id=device_id, expires_at=expires_at
            )
        return AccessToken(token=token, expires_at=expires_at)

    async def authenticate(self, token: str) -> Principal:
        """The caller a bearer token stands for; `NotAuthenticated` if none."""
        if not _TOKEN.fullmatch(token):
            raise NotAuthenticated("bearer token is invalid or expired")
        now = self.clock()
        async with self.database.read_one() as conn:  # every request: one round trip
            holder = await SessionRepository(conn).token_holder(secret_hash(token), now)
        if holder is None:
            raise NotAuthenticated("bearer token is invalid or expired")
        if (
            holder.device_id is None
            or holder.device_revoked_at is not None
            or holder.account_id is None
            or holder.role is None
        ):
            raise NotAuthenticated("the token's device is no longer active")
        return Principal(
            account_id=holder.account_id, device_id=holder.device_id, role=Role(holder.role)
        )

    async def logout(self, token: str) -> None:
        """Revoke a bearer token and close the streams it opened (on every replica)."""
        token_hash = secret_hash(token)
        async with self.database.write() as conn:
            await SessionRepository(conn).revoke_token(token_hash, self.clock())
            if self.fanout is not None:
                await self.fanout.close_streams(conn, token_hash=token_hash)

    async def account(self, account_id: str, *, since: int = 0) -> AccountView:
        """An enrolled account with its devices, current encryption keys, and the
        directory log's proof of every statement about it."""
        async with self.database.read() as conn:
            view = await load_account_view(conn, account_id)
            logs = LogRepository(conn)
            checkpoint = await logs.checkpoint(DIRECTORY_LOG_ID)
            if checkpoint is None:
                raise NotFound("the directory log is empty")
            if since > checkpoint.size:
                raise InvalidInput(f"since={since} is beyond the directory's size")
            rows = await AccountRepository(conn).directory_entries_of(account_id)
            reader = ProofReader(conn, DIRECTORY_LOG_ID)
            proofs = await reader.inclusions([r.idx for r in rows], checkpoint.size)
            leaves = {
                e.idx: e.leaf
                for r in rows
                for e in await logs.entries(DIRECTORY_LOG_ID, start=r.idx, end=r.idx + 1)
            }
            directory = DirectoryProof(
                entries=[(r, leaves[r.idx], p) for r, p in zip(rows, proofs, strict=True)],
                size=checkpoint.size,
                checkpoint=checkpoint.note,
                since=since,
                consistency_proof=await reader.consistency(since, checkpoint.size),
            )
        return AccountView(
            account=view.account,
            devices=view.devices,
            encryption_keys=view.encryption_keys,
            directory=directory,
        )

    async def accounts(self, role: Role | None) -> list[AccountRow]:
        """Every enrolled account (optionally of one role)."""
        async with self.database.read() as conn:
            return await AccountRepository(conn).list_active(None if role is None else role.value)


async def load_account_view(conn: AsyncConnection, account_id: str) -> AccountView:
    """Read one enrolled account with its active devices and their newest keys."""
    repo = AccountRepository(conn)
    account = await repo.get(account_id)
    if account is None or account.status not in ("active", "revoked"):
        raise NotFound("no such account")
    devices = await repo.devices_of([account_id])
    keys = await repo.current_encryption_keys([d.id for d in devices])
    return AccountView(account=account, devices=devices, encryption_keys=keys)


def _account_key(registration: SignedStatement) -> bytes:
    value = registration.body.get("account_key")
    if not isinstance(value, str):
        raise InvalidInput("registration lacks an account key")
    return decode_key(value, "account key", 32)
