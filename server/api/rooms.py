"""Rooms, rosters, messages and events."""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Query

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import Envelope
from client_sdk.protocol.mediation import Status
from client_sdk.protocol.models import JSON_SAFE_INT, Side
from client_sdk.protocol.statements import Mode, SignedStatement
from client_sdk.protocol.wire.devices import RekeyOut
from client_sdk.protocol.wire.events import EventKind, EventOut, EventsPage, SendResponse
from client_sdk.protocol.wire.rooms import (
    CreateRoomRequest,
    ModerateRequest,
    ModerationOut,
    RoomOut,
    RoomStateOut,
    RoomSummary,
    RosterOut,
    UpdateRosterRequest,
)
from server.api.deps import CurrentPrincipal, MessagesDep, ModerationDep, PathId, RoomsDep
from server.api.errors import AUTHENTICATED, JSON_BODY, PARAMETERS, error_responses
from server.api.identity import logged_out
from server.services.messages import EventBatch, event_payload
from server.services.rooms import RoomView

router = APIRouter(prefix="/v1/rooms")

PageT = TypeVar("PageT", bound=EventsPage)


@router.post("", status_code=201, responses=error_responses(*AUTHENTICATED, *JSON_BODY, 403, 409))
async def create_room(
    body: CreateRoomRequest, principal: CurrentPrincipal, rooms: RoomsDep
) -> RoomOut:
    """Create a room from its first signed roster (mediators only)."""
    return room_out(
        await rooms.create(principal, body.roster, require_verified=body.require_verified)
    )


@router.get("", responses=error_responses(*AUTHENTICATED))
async def list_rooms(principal: CurrentPrincipal, rooms: RoomsDep) -> list[RoomSummary]:
    """Rooms the caller is a member of."""
    return [
        RoomSummary(
            room_id=r.id,
            title=r.title,
            status=Status(r.status),
            mode=Mode(r.mode),
            roster_version=r.roster_version,
            last_seq=r.last_seq,
        )
        for r in await rooms.list(principal)
    ]


@router.get("/{room_id}", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404))
async def get_room(room_id: PathId, principal: CurrentPrincipal, rooms: RoomsDep) -> RoomOut:
    """A room, with its current signed roster."""
    return room_out(await rooms.get(principal, room_id))


@router.post(
    "/{room_id}/rosters",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, *PARAMETERS, 403, 404, 409),
)
async def update_roster(
    room_id: PathId, body: UpdateRosterRequest, principal: CurrentPrincipal, rooms: RoomsDep
) -> RoomOut:
    """Publish the next roster version."""
    return room_out(await rooms.update_roster(principal, room_id, body.roster))


@router.get(
    "/{room_id}/rosters/{version}", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404)
)
async def get_roster(
    room_id: PathId, version: int, principal: CurrentPrincipal, rooms: RoomsDep
) -> RosterOut:
    """One roster version."""
    row = await rooms.roster(principal, room_id, version)
    return RosterOut(
        version=row.version, seq=row.seq, roster=SignedStatement.model_validate_json(row.statement)
    )


@router.post(
    "/{room_id}/messages",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, *PARAMETERS, 403, 404, 409),
)
async def send(
    room_id: PathId, body: Envelope, principal: CurrentPrincipal, messages: MessagesDep
) -> SendResponse:
    """Store and log an envelope; retrying with the same message id is safe.

    The answer comes after the commit, with the checkpoint that covers the new
    leaf and the leaf's inclusion proof.
    """
    result = await messages.send(principal, room_id, body)
    return SendResponse(
        seq=result.seq,
        leaf_index=result.leaf_index,
        message_id=result.message_id,
        created_at=result.created_at,
        checkpoint=result.checkpoint,
        inclusion_proof=[b64e(h) for h in result.inclusion_proof],
    )


@router.post(
    "/{room_id}/moderation",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, *PARAMETERS, 403, 404, 409),
)
async def moderate(
    room_id: PathId, body: ModerateRequest, principal: CurrentPrincipal, moderation: ModerationDep
) -> ModerationOut:
    """Apply a mediator's signed act (mode, caucus, mute, lock, close, auditor grant).

    The answer comes after the commit; after ``close`` its checkpoint is the
    room's final one.
    """
    result = await moderation.moderate(principal, room_id, body.statement)
    state = result.state
    return ModerationOut(
        seq=result.seq,
        leaf_index=result.leaf_index,
        created_at=result.created_at,
        checkpoint=result.checkpoint,
        inclusion_proof=[b64e(h) for h in result.inclusion_proof],
        state=RoomStateOut(
            mode=state.mode,
            status=state.status,
            caucuses=sorted(state.caucuses),
            muted=sorted(state.muted),
        ),
    )


@router.get("/{room_id}/events", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404))
async def events(
    room_id: PathId,
    principal: CurrentPrincipal,
    messages: MessagesDep,
    after: int = Query(default=0, ge=0, le=JSON_SAFE_INT),
    limit: int = Query(default=100, ge=1, le=500),
    since: int = Query(default=0, ge=0, le=JSON_SAFE_INT),
) -> EventsPage:
    """Events with a sequence number above `after`, in order, with their proofs."""
    return events_page(
        await messages.events(principal, room_id, after=after, limit=limit, since=since),
        after,
        EventsPage,
    )


def events_page(batch: EventBatch, after: int, shape: type[PageT]) -> PageT:
    """The wire form of a batch of events and their proofs (a page, or a stream frame)."""
    return shape(
        events=[
            EventOut(
                seq=row.seq,
                kind=EventKind(row.kind),
                channel=row.channel,
                message_id=row.message_id,
                sender_device=row.sender_device,
                leaf_index=row.leaf_index,
                created_at=row.created_at,
                payload=event_payload(row),
                leaf=b64e(batch.leaves[row.leaf_index]),
                inclusion_proof=[b64e(h) for h in batch.inclusion_proofs[row.leaf_index]],
            )
            for row in batch.events
        ],
        next_after=batch.events[-1].seq if batch.events else after,
        size=batch.size,
        checkpoint=batch.checkpoint,
        since=batch.since,
        consistency_proof=[b64e(h) for h in batch.consistency_proof],
    )


def room_out(view: RoomView) -> RoomOut:
    """The wire form of a room view."""
    room = view.room
    return RoomOut(
        room_id=room.id,
        title=room.title,
        status=Status(room.status),
        mode=Mode(room.mode),
        caucuses=[c for c in room.caucuses.split(",") if c],
        require_verified=room.require_verified,
        roster_version=room.roster_version,
        last_seq=room.last_seq,
        side=Side(view.side),
        created_at=room.created_at,
        roster=SignedStatement.model_validate_json(view.roster.statement),
        logged=None if view.logged is None else logged_out(view.logged),
        rekey=[
            RekeyOut(
                account_id=n.account_id,
                device_id=n.device_id,
                reason="revoked" if n.reason == "revoked" else "linked",
            )
            for n in view.rekey
        ],
    )
