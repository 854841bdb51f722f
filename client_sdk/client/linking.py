"""A new device joining an existing account (docs/design.md §3): keys made here, a
link request registered, its code shown, and once a device of the account approved
it, the grant checked and the keys saved in a new keystore."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from client_sdk.client.helpers import Clock
from client_sdk.client.http import HttpSession
from client_sdk.keystore import EncryptionKeyRecord, Keystore, KeystoreState, Pin
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.linking import link_code, open_account_key
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Registration,
    verify_statement,
)
from client_sdk.protocol.wire.devices import LinkGrantOut, LinkOut

POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class PendingLink:
    """A link request this device made, and the keys it holds until approval."""

    servers: tuple[str, ...]
    """The server URLs the request was made through (the preferred first)."""
    account_id: str
    link_id: str
    device_id: str
    code: str
    expires_at: int
    device_key: SigningKey
    encryption_key: EncryptionKey

    @property
    def server(self) -> str:
        """The preferred server URL."""
        return self.servers[0]


async def request_link(
    *, server: str | Sequence[str], account_id: str, transport: httpx.AsyncBaseTransport | None
) -> PendingLink:
    """Make this device's keys and register a link request for `account_id`; show the
    returned code here and compare it with the one the approving device shows."""
    device_key, encryption_key = SigningKey.generate(), EncryptionKey.generate()
    signing = device_key.public_bytes()
    encryption = encryption_key.public_bytes()
    http = HttpSession(server, transport=transport)
    try:
        link = await http.call(
            LinkOut,
            "POST",
            "/v1/device-links",
            json={
                "account_id": account_id,
                "signing_key": b64e(signing),
                "encryption_key": b64e(encryption),
            },
            auth=False,
        )
    finally:
        await http.aclose()
    if (
        link.account_id != account_id
        or link.signing_key != b64e(signing)
        or link.encryption_key != b64e(encryption)
        or link.device_id != key_id(signing)
    ):
        raise ProtocolError("the server answered the link request with other keys")
    code = link_code(
        link_id=link.link_id, account_id=account_id, signing_key=signing, encryption_key=encryption
    )
    return PendingLink(
        servers=http.servers,
        account_id=account_id,
        link_id=link.link_id,
        device_id=link.device_id,
        code=code,
        expires_at=link.expires_at,
        device_key=device_key,
        encryption_key=encryption_key,
    )


async def wait_for_grant(
    pending: PendingLink,
    *,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
    poll_seconds: float = POLL_SECONDS,
) -> LinkGrantOut:
    """Poll the request until a device of the account approves it (`ProtocolError` once
    it expired unapproved)."""
    http = HttpSession(pending.servers, transport=transport)
    try:
        while True:
            link = await http.call(
                LinkOut, "GET", f"/v1/device-links/{pending.link_id}", auth=False
            )
            if link.grant is not None:
                return link.grant
            if clock() >= pending.expires_at:
                raise ProtocolError("the link request expired before a device approved it")
            await asyncio.sleep(poll_seconds)
    finally:
        await http.aclose()


def keystore_from_grant(
    pending: PendingLink,
    grant: LinkGrantOut,
    *,
    home: Path,
    passphrase: str,
    clock: Clock,
    scrypt_n: int,
) -> Keystore:
    """Check what the approving device handed over and save this device's keystore:
    the account key opens with this device's key and is the registration's, and the
    certificates it signed name exactly this device's keys."""
    if Keystore.exists(home):
        raise ProtocolError(f"{home} already holds a keystore; use another PARLEY_HOME")
    account_key = open_account_key(
        b64d(grant.sealed_account_key),
        pending.encryption_key,
        link_id=pending.link_id,
        account_id=pending.account_id,
        device_id=pending.device_id,
    )
    public = account_key.public_bytes()
    registration = verify_statement(grant.registration, public, Registration)
    cert = verify_statement(grant.device_cert, public, DeviceCert)
    enc = verify_statement(grant.encryption_key_cert, public, EncryptionKeyCert)
    if registration.account_id != pending.account_id or registration.account_key != b64e(public):
        raise VerificationError("the sealed account key is not the account's registered key")
    if cert.device_id != pending.device_id or cert.signing_key != b64e(
        pending.device_key.public_bytes()
    ):
        raise VerificationError("the device certificate names another key")
    if enc.device_id != pending.device_id or enc.public_key != b64e(
        pending.encryption_key.public_bytes()
    ):
        raise VerificationError("the encryption key certificate names another key")
    now = clock()
    state = KeystoreState(
        servers=pending.servers,
        account_id=pending.account_id,
        device_id=pending.device_id,
        role=registration.role,
        name=registration.name,
        account_key=account_key,
        device_key=pending.device_key,
        encryption_keys=(EncryptionKeyRecord.new(pending.encryption_key, enc.not_after, now),),
        pins={
            pending.account_id: Pin(
                account_key=public, first_seen=now, verified=True, verified_key=public
            )
        },
    )
    return Keystore.create(home, passphrase, state, scrypt_n=scrypt_n)
