"""Instrument states: one row per key a room's instrument acts built (docs/design.md §7)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.tables import instrument_states


class InstrumentRepository:
    """Reads and writes the stored states (JSON text, parsed by the protocol code)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, room_id: str, keys: list[str]) -> dict[str, str]:
        """The stored state text under each of `keys` that has one."""
        if not keys:
            return {}
        rows = await self.conn.execute(
            select(instrument_states.c.key, instrument_states.c.state).where(
                instrument_states.c.room_id == room_id, instrument_states.c.key.in_(keys)
            )
        )
        return {key: state for key, state in rows}

    async def put(self, room_id: str, changes: dict[str, tuple[str, str]], seq: int) -> None:
        """Store each changed key's (kind, state text), as of event `seq`."""
        if not changes:
            return
        insert = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        statement = insert(instrument_states)
        await self.conn.execute(
            statement.on_conflict_do_update(
                index_elements=["room_id", "key"],
                set_={
                    "kind": statement.excluded.kind,
                    "state": statement.excluded.state,
                    "seq": statement.excluded.seq,
                },
            ),
            [
                {"room_id": room_id, "key": key, "kind": kind, "state": state, "seq": seq}
                for key, (kind, state) in changes.items()
            ],
        )
