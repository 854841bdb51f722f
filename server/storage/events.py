"""A room's events: signed rosters, envelopes and later moderation acts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.logs import APPEND_CTES, WRITE_VERSION, AppendWrites, LogRepository
from server.storage.prepared import Prepared
from server.storage.rooms import RoomRepository
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

# Only column names from the table definition are interpolated into the text.
_EVENT_CTES = f"""{APPEND_CTES}, event AS (
  INSERT INTO events ({", ".join(c.name for c in _COLUMNS)})
  VALUES ({", ".join(":" + c.name for c in _COLUMNS)})
), room AS (
  UPDATE rooms SET last_seq = :seq WHERE id = :room_id
)"""  # noqa: S608
_ADD_APPENDED_PG = text(f"WITH {_EVENT_CTES} SELECT {WRITE_VERSION}")
_ADD_APPENDED_NOTIFY_PG = text(
    f"WITH {_EVENT_CTES} SELECT pg_notify(:notify_channel, :notify_payload), {WRITE_VERSION}"
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


def _columns(event: EventRow) -> dict[str, Any]:
    """The values of an event's row, by column name."""
    return {
        "room_id": event.room_id,
        "seq": event.seq,
        "kind": event.kind,
        "channel": event.channel,
        "message_id": event.message_id,
        "sender_device": event.sender_device,
        "payload": event.payload,
        "payload_hash": event.payload_hash,
        "leaf_index": event.leaf_index,
        "created_at": event.created_at,
    }


class EventRepository:
    """Appends and pages through room events."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(self, event: EventRow) -> None:
        """Store one event (its sequence number already assigned)."""
        await _ADD.run(self.conn, **_columns(event))

    async def add_appended(
        self, event: EventRow, writes: AppendWrites, notify: tuple[str, str] | None
    ) -> int | None:
        """Store the event with the log append that records it (`LogWriter.plan`),
        advance the room's sequence counter to the event's, and queue the notification
        ``(channel, payload)`` for commit (PostgreSQL's NOTIFY; None elsewhere). The
        caller holds the room's and the log head's locks. PostgreSQL: one statement, so
        one round trip inside the locks, which returns the version the log head now
        carries (`LogHead.version`; None on SQLite)."""
        if self.conn.dialect.name != "postgresql":
            await LogRepository(self.conn).write_append(writes)
            await self.add(event)
            await RoomRepository(self.conn).set_last_seq(event.room_id, event.seq)
            return None
        params = writes.params()
        params.update(_columns(event))
        statement = _ADD_APPENDED_PG
        if notify is not None:
            statement = _ADD_APPENDED_NOTIFY_PG
            params.update(notify_channel=notify[0], notify_payload=notify[1])
        row = (await self.conn.execute(statement, params)).one()
        return int(row[-1])

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
