"""Small helpers of the client: decoding, statements, roster members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import ValidationError

from client_sdk.client.verify import VerifiedAccount
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.models import Side
from client_sdk.protocol.statements import (
    EncryptionKeyCert,
    RosterDevice,
    RosterMember,
    SignedStatement,
    sign_statement,
)

Clock = Callable[[], int]
"""Milliseconds since the epoch (injectable, for tests of key expiry)."""


def party_side(side: Side | str) -> Literal["a", "b"]:
    value = Side(side)
    if value is Side.A:
        return "a"
    if value is Side.B:
        return "b"
    raise ProtocolError("a caucus is with side a or side b")


def b64(value: str) -> bytes:
    try:
        return b64d(value)
    except ProtocolError as exc:
        raise VerificationError(str(exc)) from exc


def signed_statement(value: Any) -> SignedStatement:
    try:
        return SignedStatement.model_validate(value)
    except ValidationError as exc:
        raise VerificationError("malformed signed statement") from exc


def dump(signed: SignedStatement) -> dict[str, Any]:
    return signed.model_dump(mode="json")


def encryption_cert(
    account_key: SigningKey,
    account_id: str,
    device_id: str,
    enc_key: EncryptionKey,
    now: int,
    not_after: int,
) -> SignedStatement:
    public = enc_key.public_bytes()
    return sign_statement(
        account_key,
        EncryptionKeyCert(
            account_id=account_id,
            device_id=device_id,
            key_id=key_id(public),
            public_key=b64e(public),
            issued_at=now,
            not_after=not_after,
        ),
    )


def roster_member(account: VerifiedAccount, side: Side) -> RosterMember:
    return RosterMember(
        account_id=account.account_id,
        name=account.name,
        side=side,
        account_key=b64e(account.account_key),
        devices=[
            RosterDevice(device_id=d.device_id, signing_key=b64e(d.signing_key))
            for d in account.devices.values()
        ],
    )
