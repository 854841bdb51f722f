"""Enrollment, login and the key directory."""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter, Query, Response

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.models import JSON_SAFE_INT, Role
from client_sdk.protocol.statements import SignedStatement
from client_sdk.protocol.wire.identity import (
    AccountOut,
    AccountSummary,
    ChallengeRequest,
    ChallengeResponse,
    DeviceOut,
    DirectoryEntryOut,
    DirectoryProofOut,
    EncryptionKeyOut,
    EnrollmentTokenRequest,
    EnrollmentTokenResponse,
    EnrollPreview,
    EnrollPreviewRequest,
    EnrollRequest,
    EnrollResponse,
    RotateKeyRequest,
    TokenRequest,
    TokenResponse,
)
from client_sdk.protocol.wire.logs import LoggedOut
from server.api.deps import LIMIT_BY_ADDRESS, BearerToken, CurrentPrincipal, IdentityDep, PathId
from server.api.errors import AUTHENTICATED, JSON_BODY, PARAMETERS, PUBLIC, error_responses
from server.services.identity import AccountView

router = APIRouter(prefix="/v1")


@router.post(
    "/enroll/preview",
    dependencies=[LIMIT_BY_ADDRESS],
    responses=error_responses(*PUBLIC, *JSON_BODY, 401),
)
async def enroll_preview(body: EnrollPreviewRequest, identity: IdentityDep) -> EnrollPreview:
    """The account a token enrolls (id, name, role), so the client can sign its registration."""
    account = await identity.preview_enrollment(body.token)
    return EnrollPreview(account_id=account.id, name=account.name, role=Role(account.role))


@router.post(
    "/enroll",
    status_code=201,
    dependencies=[LIMIT_BY_ADDRESS],
    responses=error_responses(*PUBLIC, *JSON_BODY, 401, 409),
)
async def enroll(body: EnrollRequest, identity: IdentityDep) -> EnrollResponse:
    """Redeem a one-time enrollment token with locally generated keys."""
    device, logged = await identity.enroll(
        token=body.token,
        registration=body.registration,
        device_cert=body.device_cert,
        encryption_key_cert=body.encryption_key_cert,
    )
    return EnrollResponse(
        account_id=device.account_id,
        device_id=device.id,
        logged=[logged_out(a) for a in logged],
    )


@router.post(
    "/auth/challenge",
    dependencies=[LIMIT_BY_ADDRESS],
    responses=error_responses(*PUBLIC, *JSON_BODY, 404),
)
async def challenge(body: ChallengeRequest, identity: IdentityDep) -> ChallengeResponse:
    """A single-use login nonce for a device."""
    nonce, expires_at = await identity.challenge(body.device_id)
    return ChallengeResponse(nonce=nonce, expires_at=expires_at)


@router.post(
    "/auth/token",
    dependencies=[LIMIT_BY_ADDRESS],
    responses=error_responses(*PUBLIC, *JSON_BODY, 401),
)
async def token(body: TokenRequest, identity: IdentityDep) -> TokenResponse:
    """Exchange a signed challenge for a bearer token."""
    issued = await identity.login(
        device_id=body.device_id, nonce=body.nonce, signature=body.signature
    )
    return TokenResponse(token=issued.token, expires_at=issued.expires_at)


@router.post("/auth/logout", status_code=204, responses=error_responses(*AUTHENTICATED))
async def logout(
    _principal: CurrentPrincipal, bearer: BearerToken, identity: IdentityDep
) -> Response:
    """Revoke the bearer token used for this request."""
    await identity.logout(bearer)
    return Response(status_code=204)


@router.get("/accounts/me", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404))
async def me(
    principal: CurrentPrincipal,
    identity: IdentityDep,
    since: int = Query(default=0, ge=0, le=JSON_SAFE_INT),
) -> AccountOut:
    """The caller's own account."""
    return account_out(await identity.account(principal.account_id, since=since))


@router.get("/accounts/{account_id}", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404))
async def account(
    account_id: PathId,
    _principal: CurrentPrincipal,
    identity: IdentityDep,
    since: int = Query(default=0, ge=0, le=JSON_SAFE_INT),
) -> AccountOut:
    """Any enrolled account, with its certified keys and their directory-log proofs.

    `since` is the directory size the caller last verified; the answer proves
    its checkpoint consistent with it.
    """
    return account_out(await identity.account(account_id, since=since))


@router.get("/accounts", responses=error_responses(*AUTHENTICATED, *PARAMETERS))
async def accounts(
    _principal: CurrentPrincipal, identity: IdentityDep, role: Role | None = Query(default=None)
) -> list[AccountSummary]:
    """Enrolled accounts, optionally of one role."""
    return [
        AccountSummary(account_id=a.id, name=a.name, role=Role(a.role))
        for a in await identity.accounts(role)
    ]


@router.post(
    "/enrollment-tokens",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, 403),
)
async def invite(
    body: EnrollmentTokenRequest, principal: CurrentPrincipal, identity: IdentityDep
) -> EnrollmentTokenResponse:
    """A mediator issues a party's one-time enrollment token."""
    ticket = await identity.issue_party_enrollment(principal, body.name)
    return EnrollmentTokenResponse(
        account_id=ticket.account_id, token=ticket.token, expires_at=ticket.expires_at
    )


@router.post(
    "/devices/me/encryption-keys",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, 409),
)
async def rotate(
    body: RotateKeyRequest, principal: CurrentPrincipal, identity: IdentityDep
) -> LoggedOut:
    """Publish the calling device's new encryption key; answer with its directory leaf."""
    return logged_out(await identity.rotate_encryption_key(principal, body.cert))


class AppendedLeaf(Protocol):
    """What a service answers an append with: where the leaf landed, the checkpoint of the
    size it made, and its inclusion proof. (Routes never import the log itself.)"""

    @property
    def index(self) -> int:
        """The leaf's index in its log."""

    @property
    def server_time(self) -> int:
        """When the server appended it (ms since the epoch)."""

    @property
    def checkpoint(self) -> str:
        """The signed checkpoint of the size it made."""

    @property
    def inclusion_proof(self) -> list[bytes]:
        """The leaf's inclusion proof in that checkpoint."""


def logged_out(appended: AppendedLeaf) -> LoggedOut:
    """The wire form of an appended leaf and its proof."""
    return LoggedOut(
        leaf_index=appended.index,
        created_at=appended.server_time,
        checkpoint=appended.checkpoint,
        inclusion_proof=[b64e(h) for h in appended.inclusion_proof],
    )


def account_out(view: AccountView) -> AccountOut:
    """The wire form of an account view."""
    account = view.account
    assert account.account_key is not None
    assert account.registration is not None
    devices = []
    for device in view.devices:
        key = view.encryption_keys.get(device.id)
        devices.append(
            DeviceOut(
                device_id=device.id,
                signing_key=b64e(device.signing_key),
                cert=SignedStatement.model_validate_json(device.cert),
                encryption_key=None
                if key is None
                else EncryptionKeyOut(
                    key_id=key.id,
                    public_key=b64e(key.public_key),
                    not_after=key.not_after,
                    cert=SignedStatement.model_validate_json(key.cert),
                ),
            )
        )
    directory = view.directory
    return AccountOut(
        account_id=account.id,
        name=account.name,
        role=Role(account.role),
        account_key=b64e(account.account_key),
        registration=SignedStatement.model_validate_json(account.registration),
        devices=devices,
        directory=None
        if directory is None
        else DirectoryProofOut(
            entries=[
                DirectoryEntryOut(
                    index=row.idx,
                    kind=row.kind,
                    leaf=b64e(leaf),
                    statement=SignedStatement.model_validate_json(row.statement),
                    inclusion_proof=[b64e(h) for h in proof],
                )
                for row, leaf, proof in directory.entries
            ],
            size=directory.size,
            checkpoint=directory.checkpoint,
            since=directory.since,
            consistency_proof=[b64e(h) for h in directory.consistency_proof],
        ),
    )
