"""Writing the directory log (docs/design.md §3, §6): each statement about an account's
keys is checked, stored and appended as a directory leaf in the caller's transaction,
so the change and its leaf land together or not at all."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.encoding import b64d
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import ENCRYPTION_PUBLIC_LEN, hpke_public_key, key_id
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    SignedStatement,
    StatementT,
    verify_statement,
)
from server.errors import Conflict, InvalidInput
from server.log.appender import Appended, LogWriter
from server.services.common import decode_key
from server.storage.accounts import AccountRepository, DeviceRow, DirectoryEntryRow

MAX_ENCRYPTION_KEY_LIFETIME_MS = 90 * 24 * 3600 * 1000


def verified_statement(
    signed: SignedStatement, public_key: bytes, model: type[StatementT]
) -> StatementT:
    """`verify_statement`, a failure being the caller's bad input."""
    try:
        return verify_statement(signed, public_key, model)
    except VerificationError as exc:
        raise InvalidInput(f"{model.__name__}: {exc}") from exc


async def append_directory(
    conn: AsyncConnection,
    log: LogWriter,
    kind: str,
    signed: SignedStatement,
    actor_key: bytes,
    now: int,
) -> Appended:
    """Append `signed` to the directory log as a leaf of `kind`, acted by the key that
    signed it (an account key; the log key for an operator's revocation)."""
    appended = await log.append(
        conn,
        DIRECTORY_LOG_ID,
        type=kind,
        actor_device=key_id(actor_key),
        payload_hash=signed.body_hash(),
        signature=b64d(signed.signature),
        server_time=now,
    )
    await AccountRepository(conn).add_directory_entry(
        DirectoryEntryRow(
            idx=appended.index,
            account_id=str(signed.body["account_id"]),
            kind=kind,
            statement=signed.model_dump_json(),
        )
    )
    return appended


async def add_device(
    conn: AsyncConnection,
    log: LogWriter,
    account_id: str,
    account_key: bytes,
    signed: SignedStatement,
    now: int,
) -> tuple[DeviceRow, Appended]:
    """Store a device its account key certified, and log the certificate."""
    cert = verified_statement(signed, account_key, DeviceCert)
    signing_key = decode_key(cert.signing_key, "device signing key", 32)
    if cert.account_id != account_id:
        raise InvalidInput("device certificate names another account")
    if cert.device_id != key_id(signing_key):
        raise InvalidInput("device id must be the key id of its signing key")
    repo = AccountRepository(conn)
    if await repo.device(cert.device_id) is not None:
        raise Conflict("this device is already registered")
    await repo.add_device(
        device_id=cert.device_id,
        account_id=account_id,
        signing_key=signing_key,
        cert=signed.model_dump_json(),
        now=now,
    )
    appended = await append_directory(conn, log, "device", signed, account_key, now)
    device = await repo.device(cert.device_id)
    assert device is not None
    return device, appended


async def add_encryption_key(
    conn: AsyncConnection,
    log: LogWriter,
    account_id: str,
    account_key: bytes,
    device_id: str,
    signed: SignedStatement,
    now: int,
) -> Appended:
    """Store a device's encryption key its account key certified, and log the certificate."""
    cert = verified_statement(signed, account_key, EncryptionKeyCert)
    public_key = decode_key(cert.public_key, "encryption key", ENCRYPTION_PUBLIC_LEN)
    try:
        hpke_public_key(public_key)
    except ProtocolError as exc:
        raise InvalidInput(str(exc)) from exc
    if cert.account_id != account_id or cert.device_id != device_id:
        raise InvalidInput("encryption key certificate names another account or device")
    if cert.key_id != key_id(public_key):
        raise InvalidInput("key id must be the key id of the encryption key")
    if not now < cert.not_after <= now + MAX_ENCRYPTION_KEY_LIFETIME_MS:
        raise InvalidInput("encryption key expiry must be in the future, within 90 days")
    repo = AccountRepository(conn)
    if await repo.encryption_key(cert.key_id) is not None:
        raise Conflict("this encryption key is already registered")
    await repo.add_encryption_key(
        key_id=cert.key_id,
        device_id=device_id,
        public_key=public_key,
        cert=signed.model_dump_json(),
        not_after=cert.not_after,
        now=now,
    )
    return await append_directory(conn, log, "encryption-key", signed, account_key, now)
