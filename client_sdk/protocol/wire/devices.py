"""Devices: revocation and linking a new device (docs/design.md §3)."""

from __future__ import annotations

from typing import Literal

from client_sdk.protocol.models import B64, Ident, Int, WireModel
from client_sdk.protocol.statements import SignedStatement
from client_sdk.protocol.wire.base import Answer


class RevokeDeviceRequest(WireModel):
    """A device's revocation, signed by its account key."""

    statement: SignedStatement


class LinkRequest(WireModel):
    """A new device asks to join an account: its public keys (not yet certified)."""

    account_id: Ident
    signing_key: B64
    encryption_key: B64


class ApproveLinkRequest(WireModel):
    """An existing device approves a link: the new device's certificates, signed by the
    account key, and the account key sealed to the new device's encryption key."""

    device_cert: SignedStatement
    encryption_key_cert: SignedStatement
    sealed_account_key: B64


class LinkGrantOut(Answer):
    """What the approving device handed over (the account key only sealed)."""

    registration: SignedStatement
    device_cert: SignedStatement
    encryption_key_cert: SignedStatement
    sealed_account_key: B64
    approved_by: Ident
    approved_at: Int


class LinkOut(Answer):
    """A link request: the new device's keys, its state, and once approved the grant."""

    link_id: Ident
    account_id: Ident
    device_id: Ident
    signing_key: B64
    encryption_key: B64
    status: Literal["pending", "approved"]
    created_at: Int
    expires_at: Int
    grant: LinkGrantOut | None = None


class RekeyOut(Answer):
    """Why a room's roster no longer matches an account's devices: a listed device was
    revoked, or the account linked a device the roster lacks. A mediator re-keys."""

    account_id: Ident
    device_id: Ident
    reason: Literal["revoked", "linked"]
