"""Devices: revoking one, and linking a new one to an account."""

from __future__ import annotations

from fastapi import APIRouter

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.wire.devices import (
    ApproveLinkRequest,
    LinkGrantOut,
    LinkOut,
    LinkRequest,
    RevokeDeviceRequest,
)
from client_sdk.protocol.wire.logs import LoggedOut
from server.api.deps import LIMIT_BY_ADDRESS, CurrentPrincipal, DevicesDep, PathId
from server.api.errors import AUTHENTICATED, JSON_BODY, PARAMETERS, PUBLIC, error_responses
from server.api.identity import logged_out
from server.services.devices import LinkView

router = APIRouter(prefix="/v1")


@router.post(
    "/devices/revocations",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, 403, 404, 409),
)
async def revoke(
    body: RevokeDeviceRequest, principal: CurrentPrincipal, devices: DevicesDep
) -> LoggedOut:
    """Revoke a device of the caller's account (signed by the account key): its tokens
    are refused from now on, its streams closed; answer with the directory leaf."""
    done = await devices.revoke(principal, body.statement)
    return logged_out(done.appended)


@router.post(
    "/device-links",
    status_code=201,
    dependencies=[LIMIT_BY_ADDRESS],
    responses=error_responses(*PUBLIC, *JSON_BODY, 404, 409),
)
async def request_link(body: LinkRequest, devices: DevicesDep) -> LinkOut:
    """A new device asks to join an account; a device of the account approves it."""
    row = await devices.request_link(body.account_id, body.signing_key, body.encryption_key)
    return link_out(row)


@router.get("/device-links", responses=error_responses(*AUTHENTICATED))
async def pending_links(principal: CurrentPrincipal, devices: DevicesDep) -> list[LinkOut]:
    """The caller's account's link requests waiting for approval."""
    return [link_out(row) for row in await devices.pending_links(principal)]


@router.get(
    "/device-links/{link_id}",
    dependencies=[LIMIT_BY_ADDRESS],
    responses=error_responses(*PUBLIC, *PARAMETERS, 404),
)
async def link(link_id: PathId, devices: DevicesDep) -> LinkOut:
    """A link request by id (the new device polls it until it is approved)."""
    return link_out(await devices.link(link_id))


@router.post(
    "/device-links/{link_id}/approve",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, *PARAMETERS, 404, 409),
)
async def approve_link(
    link_id: PathId, body: ApproveLinkRequest, principal: CurrentPrincipal, devices: DevicesDep
) -> LinkOut:
    """Approve a link request of the caller's account: the new device's certificates,
    signed by the account key, are logged; the grant waits for the new device."""
    row, _ = await devices.approve_link(principal, link_id, body)
    return link_out(row)


def link_out(row: LinkView) -> LinkOut:
    """The wire form of a link request."""
    return LinkOut(
        link_id=row.id,
        account_id=row.account_id,
        device_id=row.device_id,
        signing_key=b64e(row.signing_key),
        encryption_key=b64e(row.encryption_key),
        status="approved" if row.status == "approved" else "pending",
        created_at=row.created_at,
        expires_at=row.expires_at,
        grant=None if row.grant is None else LinkGrantOut.model_validate_json(row.grant),
    )
