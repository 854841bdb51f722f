"""A room's events: signed rosters, envelopes and later moderation acts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.prepared import Prepared
from server.storage.rows import from_row
from server.storage.tables import events

_COLUMNS = (
    events.c.room_id,
    events.c.seq,
    events.c.kind,
    events.c.channel,
    events.c.message_id,
    events.c.sender_device,
    events.c.payload,
    events.c.payload_hash,
    events.c.leaf_index,
    events.c.created_at,
)
_ADD = Prepared(events.insert().values({c.name: bindparam(c.name) for c in _COLUMNS}))
_BY_MESSAGE_ID = Prepared(
    select(*_COLUMNS).where(
        events.c.room_id == bindparam("room_id"), events.c.message_id == bindparam("message_id")
    )
)
_PAGE = Prepared(
    select(*_COLUMNS)
    .where(events.c.room_id == bindparam("room_id"), events.c.seq > bindparam("after"))
    .order_by(events.c.seq)
    .limit(bindparam("limit"))
)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event as stored."""

    room_id: str
    seq: int
    kind: str
    channel: str | None
    message_id: str | None
    sender_device: str
    payload: str | None
    payload_hash: bytes
    leaf_index: int
    created_at: int


class EventRepository:
    """Appends and pages through room events."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(self, event: EventRow) -> None:
        """Store one event (its sequence number already assigned)."""
        await _ADD.run(
            self.conn,
            room_id=event.room_id,
            seq=event.seq,
            kind=event.kind,
            channel=event.channel,
            message_id=event.message_id,
            sender_device=event.sender_device,
            payload=event.payload,
            payload_hash=event.payload_hash,
            leaf_index=event.leaf_index,
            created_at=event.created_at,
        )

    async def by_message_id(self, room_id: str, message_id: str) -> EventRow | None:
        """The event a client message id produced, if any (idempotent retries)."""
        row = await _BY_MESSAGE_ID.first(self.conn, room_id=room_id, message_id=message_id)
        return None if row is None else EventRow(*row)

    async def page(self, room_id: str, *, after: int, limit: int) -> list[EventRow]:
        """Events with ``seq > after``, in order, at most `limit`."""
        rows = await _PAGE.rows(self.conn, room_id=room_id, after=after, limit=limit)
        return [EventRow(*r) for r in rows]

    async def by_leaf_range(self, room_id: str, start: int, end: int) -> list[EventRow]:
        """Events whose log leaves are ``start <= index < end``."""
        rows = await self.conn.execute(
            select(events)
            .where(
                events.c.room_id == room_id,
                events.c.leaf_index >= start,
                events.c.leaf_index < end,
            )
            .order_by(events.c.leaf_index)
        )
        return [from_row(EventRow, r) for r in rows]
