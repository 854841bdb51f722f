"""Enrollment: keys generated on this device, their public halves registered with an
enrollment token, and the private halves saved in a new keystore."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx

from client_sdk.client.helpers import Clock, dump, encryption_cert
from client_sdk.client.http import HttpSession
from client_sdk.client.keys import DEFAULT_KEY_LIFETIME_MS
from client_sdk.keystore import EncryptionKeyRecord, Keystore, KeystoreState, Pin
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.statements import DeviceCert, Registration, sign_statement
from client_sdk.protocol.wire.identity import EnrollPreview, EnrollResponse


async def enroll_device(
    *,
    server: str | Sequence[str],
    token: str,
    home: Path,
    passphrase: str,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
    scrypt_n: int,
) -> Keystore:
    """Generate keys here, register their public halves, and save them in a new keystore."""
    if Keystore.exists(home):
        raise ProtocolError(f"{home} already holds a keystore; use another PARLEY_HOME")
    http = HttpSession(server, transport=transport)
    try:
        preview = await http.call(
            EnrollPreview, "POST", "/v1/enroll/preview", json={"token": token}, auth=False
        )
        account_id, name, role = preview.account_id, preview.name, preview.role
        now = clock()
        account_key, device_key = SigningKey.generate(), SigningKey.generate()
        enc_key = EncryptionKey.generate()
        device_id = key_id(device_key.public_bytes())
        not_after = now + DEFAULT_KEY_LIFETIME_MS
        body = {
            "token": token,
            "registration": dump(
                sign_statement(
                    account_key,
                    Registration(
                        account_id=account_id,
                        name=name,
                        role=role,
                        account_key=b64e(account_key.public_bytes()),
                        issued_at=now,
                    ),
                )
            ),
            "device_cert": dump(
                sign_statement(
                    account_key,
                    DeviceCert(
                        account_id=account_id,
                        device_id=device_id,
                        signing_key=b64e(device_key.public_bytes()),
                        issued_at=now,
                    ),
                )
            ),
            "encryption_key_cert": dump(
                encryption_cert(account_key, account_id, device_id, enc_key, now, not_after)
            ),
        }
        enrolled = await http.call(EnrollResponse, "POST", "/v1/enroll", json=body, auth=False)
        if (enrolled.account_id, enrolled.device_id) != (account_id, device_id):
            raise ProtocolError(
                f"enrolled {account_id} with device {device_id}, but the server answered "
                f"{enrolled.account_id} with device {enrolled.device_id}"
            )
    finally:
        await http.aclose()
    own_key = account_key.public_bytes()
    state = KeystoreState(
        servers=http.servers,
        account_id=account_id,
        device_id=device_id,
        role=role,
        name=name,
        account_key=account_key,
        device_key=device_key,
        encryption_keys=(EncryptionKeyRecord.new(enc_key, not_after, now),),
        pins={
            account_id: Pin(
                account_key=own_key, first_seen=now, verified=True, verified_key=own_key
            )
        },
    )
    return Keystore.create(home, passphrase, state, scrypt_n=scrypt_n)
