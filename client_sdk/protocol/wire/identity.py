"""Enrollment, login and the key directory."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from client_sdk.protocol.models import B64, Ident, Int, Name, Role, WireModel
from client_sdk.protocol.statements import SignedStatement
from client_sdk.protocol.wire.base import Answer
from client_sdk.protocol.wire.logs import LoggedOut


class EnrollRequest(WireModel):
    """Redeem an enrollment token with locally generated, self-certified keys."""

    token: str = Field(min_length=1, max_length=200)
    registration: SignedStatement
    device_cert: SignedStatement
    encryption_key_cert: SignedStatement


class EnrollPreviewRequest(WireModel):
    """Look up what a token enrolls, without using it."""

    token: str = Field(min_length=1, max_length=200)


class EnrollPreview(Answer):
    """The pending account a token enrolls: what the registration must state."""

    account_id: Ident
    name: Name
    role: Role


class EnrollResponse(Answer):
    """The enrolled account and device, and the directory leaves that logged them."""

    account_id: Ident
    device_id: Ident
    logged: list[LoggedOut]


class ChallengeRequest(WireModel):
    """Ask for a login nonce for a device."""

    device_id: Ident


class ChallengeResponse(Answer):
    """A single-use nonce and its expiry (ms since the epoch)."""

    nonce: B64
    expires_at: Int


class TokenRequest(WireModel):
    """A device's signature over a login challenge."""

    device_id: Ident
    nonce: B64
    signature: B64


class TokenResponse(Answer):
    """An opaque bearer token and its expiry (ms since the epoch)."""

    token: str
    expires_at: Int


class EncryptionKeyOut(Answer):
    """A device's current encryption key with its certificate."""

    key_id: Ident
    public_key: B64
    not_after: Int
    cert: SignedStatement


class DeviceOut(Answer):
    """A device with its certificate and current encryption key."""

    device_id: Ident
    signing_key: B64
    cert: SignedStatement
    encryption_key: EncryptionKeyOut | None


class DirectoryEntryOut(Answer):
    """One directory leaf about the account, the statement it logs, and its proof."""

    index: Int
    kind: str
    leaf: B64
    statement: SignedStatement
    inclusion_proof: list[B64]


class DirectoryProofOut(Answer):
    """The account's directory leaves proven against one checkpoint."""

    entries: list[DirectoryEntryOut]
    size: Int
    checkpoint: str
    since: Int
    consistency_proof: list[B64]


class AccountOut(Answer):
    """An enrolled account as the directory shows it."""

    account_id: Ident
    name: Name
    role: Role
    account_key: B64
    registration: SignedStatement
    devices: list[DeviceOut]
    directory: DirectoryProofOut | None


class AccountSummary(Answer):
    """One line of the account list."""

    account_id: Ident
    name: Name
    role: Role


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise ValueError("must not contain NUL characters")
    return value


class EnrollmentTokenRequest(WireModel):
    """A mediator invites a party by name."""

    name: Annotated[Name, AfterValidator(_no_nul)]


class EnrollmentTokenResponse(Answer):
    """A pending party account and its one-time token."""

    account_id: Ident
    token: str
    expires_at: Int


class RotateKeyRequest(WireModel):
    """A device's new encryption key, certified by its account key."""

    cert: SignedStatement
