"""Rooms, rosters and moderation."""

from __future__ import annotations

from pydantic import Field, StrictBool

from client_sdk.protocol.mediation import Status
from client_sdk.protocol.models import B64, Ident, Int, Name, Side, WireModel
from client_sdk.protocol.statements import Mode, SignedStatement
from client_sdk.protocol.wire.base import Answer
from client_sdk.protocol.wire.devices import RekeyOut
from client_sdk.protocol.wire.logs import LoggedOut


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


class RoomStateOut(Answer):
    """What moderation changes: mode, status, open caucuses, muted members."""

    mode: Mode
    status: Status
    caucuses: list[str]
    muted: list[Ident]


class ModerationOut(Answer):
    """Where a moderation act landed, with its proof and the state after it."""

    seq: Int
    leaf_index: Int
    created_at: Int
    checkpoint: str
    inclusion_proof: list[B64]
    state: RoomStateOut


class RoomOut(Answer):
    """A room as its members see it."""

    room_id: Ident
    title: Name
    status: Status
    mode: Mode
    caucuses: list[str]
    require_verified: bool
    roster_version: Int
    last_seq: Int
    side: Side
    created_at: Int
    roster: SignedStatement
    logged: LoggedOut | None = None
    """After a roster change: the roster's leaf and its proof."""
    rekey: list[RekeyOut] = Field(default_factory=list)
    """Devices the roster lists that were revoked, or that members linked since: the
    room needs a new roster version (`parley room rekey`)."""


class RoomSummary(Answer):
    """One line of the room list."""

    room_id: Ident
    title: Name
    status: Status
    mode: Mode
    roster_version: Int
    last_seq: Int


class RosterOut(Answer):
    """One signed roster version and the event that carried it."""

    version: Int
    seq: Int
    roster: SignedStatement
