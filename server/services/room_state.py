"""A room's moderation state as the services read and store it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.errors import NotPermitted
from client_sdk.protocol.mediation import Refusal, RoomState, Status
from client_sdk.protocol.statements import Mode, Roster, SignedStatement, parse_statement
from server.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound
from server.storage.rooms import RoomRepository, RoomRow

_ERRORS: dict[Refusal, type[DomainError]] = {
    Refusal.CLOSED: Conflict,
    Refusal.LOCKED: Conflict,
    Refusal.NOT_MEMBER: NotFound,
    Refusal.UNKNOWN_CHANNEL: InvalidInput,
    Refusal.CHANNEL_CLOSED: Conflict,
    Refusal.WRONG_SIDE: NotAllowed,
    Refusal.OBSERVER: NotAllowed,
    Refusal.MUTED: NotAllowed,
    Refusal.SHUTTLE: NotAllowed,
    Refusal.INVALID: Conflict,
    Refusal.UNKNOWN: NotFound,
    Refusal.MISMATCH: InvalidInput,
}


def refusal_error(refusal: NotPermitted) -> DomainError:
    """The domain error for a refusal by the room's rules."""
    return _ERRORS[refusal.reason](str(refusal))


async def load_state(conn: AsyncConnection, room: RoomRow) -> RoomState:
    """Mode, status, open caucuses and mutes of `room`."""
    return RoomState(
        mode=Mode(room.mode),
        status=Status(room.status),
        caucuses=frozenset(c for c in room.caucuses.split(",") if c),
        muted=frozenset(await RoomRepository(conn).muted(room.id)),
    )


def sender_state(room: RoomRow, account_id: str, *, muted: bool) -> RoomState:
    """The room's state as far as a post by `account_id` needs it: mode, status,
    caucuses, and whether that account is muted (the only mute a post looks at)."""
    return RoomState(
        mode=Mode(room.mode),
        status=Status(room.status),
        caucuses=frozenset(c for c in room.caucuses.split(",") if c),
        muted=frozenset({account_id}) if muted else frozenset(),
    )


async def save_state(conn: AsyncConnection, room_id: str, state: RoomState) -> None:
    """Store a room's new moderation state."""
    await RoomRepository(conn).set_state(
        room_id,
        mode=state.mode.value,
        status=state.status.value,
        caucuses=list(state.caucuses),
        muted=set(state.muted),
    )


async def current_roster(conn: AsyncConnection, room: RoomRow) -> Roster:
    """The room's roster in force, parsed."""
    row = await RoomRepository(conn).roster(room.id, room.roster_version)
    assert row is not None
    return parse_statement(SignedStatement.model_validate_json(row.statement), Roster)
