"""Client-side checks of what the server serves: directory accounts and roster chains.

The SDK believes only signatures. An account is what its self-signed
registration says, its devices are what its account key certified, and a
room's membership is the chain of rosters signed by the room's mediators,
each chaining to the one before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import ProtocolError, RevokedServedError, VerificationError
from client_sdk.protocol.keys import key_id
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Registration,
    Revocation,
    Roster,
    SignedStatement,
    parse_statement,
    verify_statement,
)


@dataclass(frozen=True, slots=True)
class VerifiedDevice:
    """A device whose signing key (and current encryption key) the account key certified."""

    device_id: str
    signing_key: bytes
    encryption_key: bytes | None
    encryption_key_id: str | None
    encryption_not_after: int | None


@dataclass(frozen=True, slots=True)
class VerifiedAccount:
    """An account as its own signatures describe it."""

    account_id: str
    name: str
    role: Role
    account_key: bytes
    devices: dict[str, VerifiedDevice]
    """The devices in use: certified by the account key and not revoked."""
    revoked: dict[str, Revocation] = field(default_factory=dict)
    """Revoked devices (by id) and what revoked each; a revocation of the whole account
    by the operator is listed under every device the account had."""
    former: dict[str, VerifiedDevice] = field(default_factory=dict)
    """Devices the account certified and later revoked: what they signed before stays
    theirs (an old roster, message or commitment), but nothing is sealed to them."""
    whole_account_revoked: bool = False
    """The operator revoked the account itself: no device of it is trusted any more."""

    def certified_device(self, device_id: str) -> VerifiedDevice | None:
        """A device the account certified, in use or revoked since (for checking what
        it signed in the past)."""
        return self.devices.get(device_id) or self.former.get(device_id)


def _signed(value: Any, what: str) -> SignedStatement:
    try:
        return SignedStatement.model_validate(value)
    except ValidationError as exc:
        raise VerificationError(f"{what} is not a signed statement") from exc


def verify_account(
    account_id: str, data: dict[str, Any], *, now: int, operator_key: bytes | None = None
) -> VerifiedAccount:
    """Check an account served by the directory; raise `VerificationError` on any flaw.

    Revocations among its directory entries are checked by the account key, or by
    `operator_key` (the directory log's key) for the operator's; without that key an
    operator's revocation is taken unchecked, since it can only remove trust. A
    device served as in use that a revocation names is refused: the server is
    serving a revoked device as current.
    """
    registration = _signed(data.get("registration"), "registration")
    try:
        account_key = b64d(str(registration.body.get("account_key", "")))
    except ProtocolError as exc:
        raise VerificationError(f"account {account_id}: bad account key") from exc
    reg = verify_statement(registration, account_key, Registration)
    if reg.account_id != account_id:
        raise VerificationError(f"account {account_id}: registration is for {reg.account_id}")
    devices: dict[str, VerifiedDevice] = {}
    for item in data.get("devices") or []:
        if not isinstance(item, dict):
            raise VerificationError(f"account {account_id}: malformed device")
        cert = verify_statement(_signed(item.get("cert"), "device cert"), account_key, DeviceCert)
        signing_key = b64d(cert.signing_key)
        if cert.account_id != account_id or cert.device_id != key_id(signing_key):
            raise VerificationError(f"account {account_id}: device certificate does not match")
        enc_key = enc_id = not_after = None
        enc = item.get("encryption_key")
        if isinstance(enc, dict):
            enc_cert = verify_statement(
                _signed(enc.get("cert"), "encryption key cert"), account_key, EncryptionKeyCert
            )
            public = b64d(enc_cert.public_key)
            if (
                enc_cert.account_id != account_id
                or enc_cert.device_id != cert.device_id
                or enc_cert.key_id != key_id(public)
            ):
                raise VerificationError(
                    f"account {account_id}: encryption key certificate does not match"
                )
            if enc_cert.not_after > now:
                enc_key, enc_id, not_after = public, enc_cert.key_id, enc_cert.not_after
        devices[cert.device_id] = VerifiedDevice(
            device_id=cert.device_id,
            signing_key=signing_key,
            encryption_key=enc_key,
            encryption_key_id=enc_id,
            encryption_not_after=not_after,
        )
    revoked, former, whole = _revocations(account_id, data, account_key, operator_key)
    for device_id in devices:
        if whole is not None or device_id in revoked:
            raise RevokedServedError(
                f"account {account_id}: the server serves device {device_id} as in use, but "
                "the directory log holds its revocation"
            )
    return VerifiedAccount(
        account_id=account_id,
        name=reg.name,
        role=reg.role,
        account_key=account_key,
        devices=devices,
        revoked=revoked,
        former=former,
        whole_account_revoked=whole is not None,
    )


def _revocations(
    account_id: str, data: dict[str, Any], account_key: bytes, operator_key: bytes | None
) -> tuple[dict[str, Revocation], dict[str, VerifiedDevice], Revocation | None]:
    """The account's revocations as its directory entries log them: revoked device ids,
    the certified devices they end, and the operator's revocation of the whole account."""
    directory = data.get("directory")
    entries = directory.get("entries") if isinstance(directory, dict) else None
    certs: dict[str, VerifiedDevice] = {}
    revoked: dict[str, Revocation] = {}
    whole: Revocation | None = None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            raise VerificationError(f"account {account_id}: malformed directory entry")
        kind = entry.get("kind")
        signed = _signed(entry.get("statement"), f"directory {kind} entry")
        if kind == "device":
            cert = verify_statement(signed, account_key, DeviceCert)
            certs[cert.device_id] = VerifiedDevice(
                device_id=cert.device_id,
                signing_key=b64d(cert.signing_key),
                encryption_key=None,
                encryption_key_id=None,
                encryption_not_after=None,
            )
        elif kind == "revocation":
            revocation = _check_revocation(account_id, signed, account_key, operator_key)
            if revocation.device_id is None:
                whole = revocation
            else:
                revoked[revocation.device_id] = revocation
    if whole is not None:
        revoked |= {d: whole for d in certs if d not in revoked}
    former = {d: certs[d] for d in revoked if d in certs}
    return revoked, former, whole


def _check_revocation(
    account_id: str, signed: SignedStatement, account_key: bytes, operator_key: bytes | None
) -> Revocation:
    authority = signed.body.get("authority")
    if authority == "operator" and operator_key is None:
        revocation = _parse_revocation(signed)
    else:
        key = operator_key if authority == "operator" else account_key
        assert key is not None
        revocation = verify_statement(signed, key, Revocation)
    if revocation.account_id != account_id:
        raise VerificationError(f"account {account_id}: a revocation names another account")
    return revocation


def _parse_revocation(signed: SignedStatement) -> Revocation:
    try:
        return parse_statement(signed, Revocation)
    except ProtocolError as exc:
        raise VerificationError(str(exc)) from exc


def verify_roster_step(
    signed: SignedStatement, *, room_id: str, previous: tuple[Roster, SignedStatement] | None
) -> Roster:
    """Check one roster version against the one before it (None for version 1).

    Version 1 must be signed by a mediator device listed in itself; each later
    version by a mediator device of the previous version, and must chain to it
    by hash with the next version number.
    """
    try:
        roster = Roster.model_validate(signed.body)
    except ValidationError as exc:
        raise VerificationError(f"room {room_id}: malformed roster") from exc
    if roster.room_id != room_id:
        raise VerificationError(f"roster is for room {roster.room_id}, not {room_id}")
    if previous is None:
        if roster.version != 1 or roster.prev_hash is not None:
            raise VerificationError(f"room {room_id}: first roster must be version 1")
        signers = roster
    else:
        prev_roster, prev_signed = previous
        if roster.version != prev_roster.version + 1:
            raise VerificationError(
                f"room {room_id}: roster version {roster.version} does not follow "
                f"{prev_roster.version}"
            )
        if roster.prev_hash != b64e(prev_signed.body_hash()):
            raise VerificationError(
                f"room {room_id}: roster version {roster.version} does not chain to the previous"
            )
        signers = prev_roster
    signer = signers.device_owner(roster.signer_device)
    if signer is None or signer.side is not Side.MEDIATOR:
        raise VerificationError(
            f"room {room_id}: roster version {roster.version} is not signed by a mediator"
        )
    key = signer.signing_key_of(roster.signer_device)
    verify_statement(signed, b64d(key), Roster)
    return roster
