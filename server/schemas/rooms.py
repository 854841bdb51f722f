"""Wire models for rooms, rosters and events."""

from __future__ import annotations

from typing import Any

from pydantic import StrictBool

from client_sdk.protocol.models import B64, Ident, Int, Name, WireModel
from client_sdk.protocol.statements import SignedStatement
from server.schemas.logs import LoggedOut


class CreateRoomRequest(WireModel):
    """A new room, described by its first roster (signed by the creating mediator)."""

    roster: SignedStatement
    require_verified: StrictBool | None = None
    """Deprecated echo of ``roster.policy.require_verified``; must agree with it if given."""


class UpdateRosterRequest(WireModel):
    """The next roster version, signed by a mediator of the current one."""

    roster: SignedStatement


class ModerateRequest(WireModel):
    """A mediator's signed moderation act."""

    statement: SignedStatement


class RoomStateOut(WireModel):
    """What moderation changes: mode, status, open caucuses, muted members."""

    mode: str
    status: str
    caucuses: list[str]
    muted: list[Ident]


class ModerationOut(WireModel):
    """Where a moderation act landed, with its proof and the state after it."""

    seq: Int
    leaf_index: Int
    created_at: Int
    checkpoint: str
    inclusion_proof: list[B64]
    state: RoomStateOut


class RoomOut(WireModel):
    """A room as its members see it."""

    room_id: Ident
    title: Name
    status: str
    mode: str
    caucuses: list[str]
    require_verified: bool
    roster_version: Int
    last_seq: Int
    side: str
    created_at: Int
    roster: SignedStatement
    logged: LoggedOut | None = None
    """After a roster change: the roster's leaf and its proof."""


class RoomSummary(WireModel):
    """One line of the room list."""

    room_id: Ident
    title: Name
    status: str
    mode: str
    roster_version: Int
    last_seq: Int


class RosterOut(WireModel):
    """One signed roster version and the event that carried it."""

    version: Int
    seq: Int
    roster: SignedStatement


class SendResponse(WireModel):
    """Where an accepted message landed."""

    seq: Int
    leaf_index: Int
    message_id: Ident
    created_at: Int
    checkpoint: str
    inclusion_proof: list[B64]


class EventOut(WireModel):
    """One room event: a signed roster or an envelope, as stored."""

    seq: Int
    kind: str
    channel: str | None
    message_id: str | None
    sender_device: Ident
    leaf_index: Int
    created_at: Int
    payload: dict[str, Any] | None
    leaf: B64
    inclusion_proof: list[B64]


class EventsPage(WireModel):
    """A page of events; ask again with ``after=next_after`` for more.

    Every event's leaf is proven included in `checkpoint` (the log at `size`),
    and `consistency_proof` shows that checkpoint extends the size `since`.
    """

    events: list[EventOut]
    next_after: Int
    size: Int
    checkpoint: str
    since: Int
    consistency_proof: list[B64]
