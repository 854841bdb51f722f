"""Revoking devices and linking new ones (docs/design.md §3).

A revocation is a directory leaf of kind ``revocation``: signed by the account
key when a device of the account revokes another (or itself), or by the
server's log key when the operator revokes a device or a whole account on the
server host. In the same transaction the device is marked revoked and its
bearer tokens too, so from the commit on every request with them is refused,
and its open streams close on every replica (`Fanout.close_streams`); every
process also looks for revoked devices among its open streams every
``PARLEY_REVOCATION_CHECK_SECONDS``, for the operator's revocations on SQLite,
which come from another process that no notification connects.

A link is a new device's request to join an account, approved by a device the
account has: the approval carries the new device's certificates, signed by the
account key, which are logged like an enrollment's, and the account key sealed
to the new device (`client_sdk.protocol.linking`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.keys import ENCRYPTION_PUBLIC_LEN, hpke_public_key, key_id
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Revocation,
    SignedStatement,
    parse_statement,
    sign_statement,
)
from client_sdk.protocol.wire.devices import ApproveLinkRequest, LinkGrantOut
from server.config import Settings
from server.errors import Conflict, InvalidInput, NotAllowed, NotFound, RateLimited
from server.log.appender import Appended, LogWriter
from server.log.signer import CheckpointSigner
from server.realtime.fanout import Fanout
from server.services.common import Clock, Principal, decode_b64, decode_key
from server.services.directory import (
    add_device,
    add_encryption_key,
    append_directory,
    verified_statement,
)
from server.storage.accounts import AccountRepository, AccountRow
from server.storage.database import Database
from server.storage.device_links import DeviceLinkRepository, DeviceLinkRow

log = logging.getLogger(__name__)

LinkView = DeviceLinkRow
"""A link request as routes see it."""


@dataclass(frozen=True, slots=True)
class RevocationDone:
    """A logged revocation: whose devices ended, and the directory leaf."""

    account_id: str
    device_ids: list[str]
    appended: Appended


class DeviceService:
    """Revocations (by the account or the operator) and device links."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Clock,
        log_writer: LogWriter,
        signer: CheckpointSigner,
        fanout: Fanout,
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.log = log_writer
        self.signer = signer
        self.fanout = fanout

    # --- revocation -------------------------------------------------------------------

    async def revoke(self, principal: Principal, signed: SignedStatement) -> RevocationDone:
        """A device of the account revokes one of its devices, signed by the account key."""
        now = self.clock()
        async with self.database.write() as conn:
            repo = AccountRepository(conn)
            account = await _active_account(repo, principal.account_id)
            assert account.account_key is not None
            statement = verified_statement(signed, account.account_key, Revocation)
            if statement.authority != "account" or statement.device_id is None:
                raise InvalidInput("a device revokes one device, with authority 'account'")
            if statement.account_id != principal.account_id:
                raise NotAllowed("a device may revoke only its own account's devices")
            device = await repo.device(statement.device_id)
            if device is None or device.account_id != account.id:
                raise NotFound("no such device of this account")
            if device.revoked_at is not None:
                raise Conflict("this device is revoked already")
            appended = await append_directory(
                conn, self.log, "revocation", signed, account.account_key, now
            )
            await repo.revoke_devices([device.id], now)
            await self.fanout.close_streams(conn, device_id=device.id)
        return RevocationDone(account.id, [device.id], appended)

    async def operator_revoke(self, target: str, *, reason: str = "") -> RevocationDone:
        """The operator revokes a device, or every device of an account (`target` is a
        device id or an account id), signed by the server's log key."""
        now = self.clock()
        async with self.database.write() as conn:
            repo = AccountRepository(conn)
            device = await repo.device(target)
            if device is not None:
                if device.revoked_at is not None:
                    raise Conflict("this device is revoked already")
                account_id, device_id = device.account_id, device.id
            else:
                account = await repo.get(target)
                if account is None or account.status == "pending":
                    raise NotFound(f"no device or enrolled account {target}")
                if account.status == "revoked":
                    raise Conflict("this account is revoked already")
                account_id, device_id = account.id, None
            statement = Revocation(
                account_id=account_id,
                device_id=device_id,
                authority="operator",
                reason=reason,
                issued_at=now,
            )
            signed = sign_statement(self.signer.statement_key(), statement)
            appended = await append_directory(
                conn, self.log, "revocation", signed, self.signer.public_key, now
            )
            if device_id is None:
                ids = [d.id for d in await repo.devices_of([account_id])]
                await repo.set_status(account_id, "revoked")
            else:
                ids = [device_id]
            await repo.revoke_devices(ids, now)
            for device_id in ids:
                await self.fanout.close_streams(conn, device_id=device_id)
        return RevocationDone(account_id, ids, appended)

    async def close_revoked_streams(self) -> list[str]:
        """Close this process's streams of devices revoked anywhere; return their ids.

        `Fanout.close_streams` reaches every replica of a revocation made by a
        server; this catches the one made by another process on SQLite (`parley
        admin revoke`), which no notification reaches."""
        hub = self.fanout.hub
        open_devices = sorted(hub.open_devices())
        if not open_devices:
            return []
        async with self.database.read() as conn:
            revoked = await AccountRepository(conn).revoked_among(open_devices)
        for device_id in revoked:
            hub.close_device(device_id)
        return revoked

    async def close_revoked_streams_forever(self) -> None:
        """`close_revoked_streams` every ``PARLEY_REVOCATION_CHECK_SECONDS`` (a background
        task of the app)."""
        while True:
            await asyncio.sleep(self.settings.revocation_check_seconds)
            try:
                await self.close_revoked_streams()
            except Exception:  # the next round tries again; the server keeps serving
                log.exception("looking for revoked devices among open streams failed")

    # --- links ------------------------------------------------------------------------

    async def request_link(
        self, account_id: str, signing_key: str, encryption_key: str
    ) -> DeviceLinkRow:
        """A new device's request to join `account_id` (no credentials: approval is what
        counts, and each account has few requests waiting at a time)."""
        signing = decode_key(signing_key, "signing key", 32)
        encryption = decode_key(encryption_key, "encryption key", ENCRYPTION_PUBLIC_LEN)
        try:
            hpke_public_key(encryption)
        except ProtocolError as exc:
            raise InvalidInput(str(exc)) from exc
        now = self.clock()
        async with self.database.write() as conn:
            repo = AccountRepository(conn)
            await _active_account(repo, account_id)
            links = DeviceLinkRepository(conn)
            await links.purge_expired(now)
            if await links.count_pending(account_id, now) >= self.settings.device_links_pending:
                raise RateLimited("too many link requests wait for this account; try later")
            device_id = key_id(signing)
            if await repo.device(device_id) is not None:
                raise Conflict("this device is already registered")
            row = DeviceLinkRow(
                id=b64e(secrets.token_bytes(24)),
                account_id=account_id,
                device_id=device_id,
                signing_key=signing,
                encryption_key=encryption,
                status="pending",
                created_at=now,
                expires_at=now + self.settings.device_link_ttl_seconds * 1000,
                approved_by=None,
                approved_at=None,
                grant=None,
            )
            await links.add(row)
        return row

    async def link(self, link_id: str) -> DeviceLinkRow:
        """A link request by its id (the id is the new device's secret)."""
        async with self.database.read() as conn:
            row = await DeviceLinkRepository(conn).get(link_id)
        if row is None or (row.status == "pending" and row.expires_at <= self.clock()):
            raise NotFound("no such link request (or it expired)")
        return row

    async def pending_links(self, principal: Principal) -> list[DeviceLinkRow]:
        """The caller's account's link requests waiting for approval."""
        async with self.database.read() as conn:
            return await DeviceLinkRepository(conn).pending(principal.account_id, self.clock())

    async def approve_link(
        self, principal: Principal, link_id: str, body: ApproveLinkRequest
    ) -> tuple[DeviceLinkRow, list[Appended]]:
        """Register the new device of a pending request with the certificates the
        approving device signed, and keep the grant for the new device to collect."""
        now = self.clock()
        decode_b64(body.sealed_account_key, "sealed account key")
        async with self.database.write() as conn:
            repo = AccountRepository(conn)
            links = DeviceLinkRepository(conn)
            link = await links.get(link_id)
            if link is None or link.account_id != principal.account_id:
                raise NotFound("no such link request for this account")
            if link.status != "pending" or link.expires_at <= now:
                raise Conflict("this link request was approved already, or it expired")
            account = await _active_account(repo, link.account_id)
            assert account.account_key is not None
            assert account.registration is not None
            _check_certifies(link, body)
            device, certified = await add_device(
                conn, self.log, account.id, account.account_key, body.device_cert, now
            )
            keyed = await add_encryption_key(
                conn,
                self.log,
                account.id,
                account.account_key,
                device.id,
                body.encryption_key_cert,
                now,
            )
            grant = LinkGrantOut(
                registration=SignedStatement.model_validate_json(account.registration),
                device_cert=body.device_cert,
                encryption_key_cert=body.encryption_key_cert,
                sealed_account_key=body.sealed_account_key,
                approved_by=principal.device_id,
                approved_at=now,
            )
            if not await links.approve(
                link_id, approved_by=principal.device_id, now=now, grant=grant.model_dump_json()
            ):
                raise Conflict("this link request was approved already, or it expired")
            approved = await links.get(link_id)
            assert approved is not None
        return approved, [certified, keyed]


async def _active_account(repo: AccountRepository, account_id: str) -> AccountRow:
    account = await repo.get(account_id)
    if account is None or account.status != "active" or account.account_key is None:
        raise NotFound("no such account")
    return account


def _check_certifies(link: DeviceLinkRow, body: ApproveLinkRequest) -> None:
    """The approval must certify exactly the keys of the request."""
    try:
        cert = parse_statement(body.device_cert, DeviceCert)
        enc = parse_statement(body.encryption_key_cert, EncryptionKeyCert)
    except ProtocolError as exc:
        raise InvalidInput(str(exc)) from exc
    if cert.signing_key != b64e(link.signing_key) or cert.device_id != link.device_id:
        raise InvalidInput("the device certificate does not certify the requested signing key")
    if enc.public_key != b64e(link.encryption_key) or enc.device_id != link.device_id:
        raise InvalidInput(
            "the encryption key certificate does not certify the requested encryption key"
        )
