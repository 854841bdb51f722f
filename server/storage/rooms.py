"""Rooms, their current members and their signed roster versions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.logs import LogHead, head_version
from server.storage.prepared import Prepared
from server.storage.rows import from_row
from server.storage.tables import (
    devices,
    events,
    logs,
    room_auditors,
    room_members,
    room_mutes,
    room_witnesses,
    rooms,
    rosters,
    witnesses,
)

_ROOM_COLUMNS = (
    rooms.c.id,
    rooms.c.title,
    rooms.c.created_by,
    rooms.c.created_at,
    rooms.c.status,
    rooms.c.mode,
    rooms.c.caucuses,
    rooms.c.require_verified,
    rooms.c.roster_version,
    rooms.c.last_seq,
)
_ROOM = Prepared(select(*_ROOM_COLUMNS).where(rooms.c.id == bindparam("room_id")))
_ROOM_FOR_UPDATE = Prepared(
    select(*_ROOM_COLUMNS).where(rooms.c.id == bindparam("room_id")).with_for_update()
)
_ROOM_AND_SIDE_FOR_UPDATE = Prepared(
    select(
        *_ROOM_COLUMNS,
        select(room_members.c.side)
        .where(
            room_members.c.room_id == rooms.c.id,
            room_members.c.account_id == bindparam("account_id"),
        )
        .scalar_subquery(),
    )
    .where(rooms.c.id == bindparam("room_id"))
    .with_for_update(of=rooms)
)
_SEND_CONTEXT = Prepared(
    select(
        *_ROOM_COLUMNS,
        select(room_members.c.side)
        .where(
            room_members.c.room_id == rooms.c.id,
            room_members.c.account_id == bindparam("account_id"),
        )
        .scalar_subquery(),
        exists()
        .where(events.c.room_id == rooms.c.id, events.c.message_id == bindparam("message_id"))
        .label("retried"),
        exists()
        .where(
            room_mutes.c.room_id == rooms.c.id,
            room_mutes.c.account_id == bindparam("account_id"),
        )
        .label("muted"),
        logs.c.id,
        logs.c.origin,
        logs.c.size,
        logs.c.created_at,
        head_version(),
    )
    .select_from(rooms.join(logs, logs.c.id == rooms.c.id))
    .where(rooms.c.id == bindparam("room_id"))
    # Rooms first: PostgreSQL locks the rows in this order, the order every other
    # writer of a room (rosters, moderation) takes them in.
    .with_for_update(of=[rooms, logs])
)
_MEMBER_DEVICES = Prepared(
    select(devices.c.id, devices.c.account_id)
    .select_from(room_members.join(devices, devices.c.account_id == room_members.c.account_id))
    .where(room_members.c.room_id == bindparam("room_id"), devices.c.revoked_at.is_(None))
)
_SIDE = Prepared(
    select(room_members.c.side).where(
        room_members.c.room_id == bindparam("room_id"),
        room_members.c.account_id == bindparam("account_id"),
    )
)
_MUTED = Prepared(
    select(room_mutes.c.account_id).where(room_mutes.c.room_id == bindparam("room_id"))
)
_SET_LAST_SEQ = Prepared(
    update(rooms).where(rooms.c.id == bindparam("room_id")).values(last_seq=bindparam("seq"))
)
_ROSTER = Prepared(
    select(
        rosters.c.room_id,
        rosters.c.version,
        rosters.c.statement,
        rosters.c.body_hash,
        rosters.c.seq,
    ).where(rosters.c.room_id == bindparam("room_id"), rosters.c.version == bindparam("version"))
)


def _room(row: tuple[object, ...] | None) -> RoomRow | None:
    if row is None:
        return None
    room = RoomRow(*row)  # type: ignore[arg-type]
    # SQLite hands the flag back as 0/1.
    return dataclasses.replace(room, require_verified=bool(room.require_verified))


@dataclass(frozen=True, slots=True)
class RoomRow:
    """A room as stored."""

    id: str
    title: str
    created_by: str
    created_at: int
    status: str
    mode: str
    caucuses: str
    require_verified: bool
    roster_version: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class SendContext:
    """What a send reads under the room's lock, in one round trip."""

    room: RoomRow | None
    side: str | None
    """The sender's side (None if not a member)."""
    retried: bool
    """Whether an event already carries this message id (a retried send)."""
    muted: bool
    """Whether the sender is muted in the room."""
    log: LogHead | None
    """The head of the room's log, locked with the room (None if there is no room)."""


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One signed roster version."""

    room_id: str
    version: int
    statement: str
    body_hash: bytes
    seq: int


class RoomRepository:
    """Reads and writes rooms, members and rosters."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def create(
        self, *, room_id: str, title: str, created_by: str, require_verified: bool, now: int
    ) -> None:
        """Insert a new open room with no events yet."""
        await self.conn.execute(
            rooms.insert().values(
                id=room_id,
                title=title,
                created_by=created_by,
                created_at=now,
                status="open",
                mode="open",
                require_verified=require_verified,
                roster_version=0,
                last_seq=0,
            )
        )

    async def get(self, room_id: str) -> RoomRow | None:
        """One room by id."""
        return _room(await _ROOM.first(self.conn, room_id=room_id))

    async def get_for_update(self, room_id: str) -> RoomRow | None:
        """One room, locking its row until the transaction ends (PostgreSQL)."""
        return _room(await _ROOM_FOR_UPDATE.first(self.conn, room_id=room_id))

    async def get_for_update_with_side(
        self, room_id: str, account_id: str
    ) -> tuple[RoomRow | None, str | None]:
        """`get_for_update` and `side_of` in one round trip (the send path)."""
        row = await _ROOM_AND_SIDE_FOR_UPDATE.first(
            self.conn, room_id=room_id, account_id=account_id
        )
        if row is None:
            return None, None
        return _room(row[:-1]), None if row[-1] is None else str(row[-1])

    async def send_context(self, room_id: str, account_id: str, message_id: str) -> SendContext:
        """Lock the room and its log's head and read, in the same round trip, both, the
        sender's side, whether this message id was used already and whether the sender
        is muted."""
        row = await _SEND_CONTEXT.first(
            self.conn, room_id=room_id, account_id=account_id, message_id=message_id
        )
        if row is None:
            return SendContext(None, None, retried=False, muted=False, log=None)
        rest = len(_ROOM_COLUMNS)
        side, retried, muted = row[rest : rest + 3]
        return SendContext(
            _room(row[:rest]),
            None if side is None else str(side),
            retried=bool(retried),
            muted=bool(muted),
            log=LogHead(*row[rest + 3 :]),
        )

    async def of_account(self, account_id: str) -> list[RoomRow]:
        """Rooms the account is a member of, newest first."""
        rows = await self.conn.execute(
            select(rooms)
            .join(room_members, room_members.c.room_id == rooms.c.id)
            .where(room_members.c.account_id == account_id)
            .order_by(rooms.c.created_at.desc(), rooms.c.id)
        )
        return [from_row(RoomRow, r) for r in rows]

    async def active_member_devices(self, room_id: str) -> list[tuple[str, str]]:
        """``(device id, account id)`` of every active device of the room's members (read
        with each room, so one prepared statement)."""
        return [(str(d), str(a)) for d, a in await _MEMBER_DEVICES.rows(self.conn, room_id=room_id)]

    async def side_of(self, room_id: str, account_id: str) -> str | None:
        """The account's side in the room, or None if it is not a member."""
        row = await _SIDE.first(self.conn, room_id=room_id, account_id=account_id)
        return None if row is None else str(row[0])

    async def set_last_seq(self, room_id: str, seq: int) -> None:
        """Advance the room's sequence counter."""
        await _SET_LAST_SEQ.run(self.conn, room_id=room_id, seq=seq)

    async def add_roster(
        self,
        *,
        room_id: str,
        version: int,
        statement: str,
        body_hash: bytes,
        seq: int,
        members: dict[str, str],
        require_verified: bool,
        witness_keys: list[str],
    ) -> None:
        """Store a new roster version and make its members the room's members, and its
        policy's witness keys the room's witnesses."""
        await self.conn.execute(
            rosters.insert().values(
                room_id=room_id, version=version, statement=statement, body_hash=body_hash, seq=seq
            )
        )
        await self.conn.execute(
            update(rooms)
            .where(rooms.c.id == room_id)
            .values(roster_version=version, require_verified=require_verified)
        )
        await self.conn.execute(delete(room_members).where(room_members.c.room_id == room_id))
        await self.conn.execute(
            room_members.insert(),
            [{"room_id": room_id, "account_id": a, "side": s} for a, s in members.items()],
        )
        await self.conn.execute(delete(room_witnesses).where(room_witnesses.c.room_id == room_id))
        if witness_keys:
            await self.conn.execute(
                room_witnesses.insert(), [{"room_id": room_id, "vkey": v} for v in witness_keys]
            )

    async def roster(self, room_id: str, version: int) -> RosterRow | None:
        """One roster version."""
        row = await _ROSTER.first(self.conn, room_id=room_id, version=version)
        return None if row is None else RosterRow(*row)

    async def grant_auditor(self, room_id: str, account_id: str, *, by: str, now: int) -> None:
        """Let an auditor read the room's log (never its content)."""
        await self.conn.execute(
            room_auditors.insert().values(
                room_id=room_id, account_id=account_id, granted_by=by, created_at=now
            )
        )

    async def is_auditor(self, room_id: str, account_id: str) -> bool:
        """Whether the account was granted the room's log."""
        row = (
            await self.conn.execute(
                select(room_auditors.c.account_id).where(
                    room_auditors.c.room_id == room_id, room_auditors.c.account_id == account_id
                )
            )
        ).first()
        return row is not None

    async def is_policy_witness(self, room_id: str, account_id: str) -> bool:
        """Whether a witness key the account registered is named in the room's policy."""
        row = (
            await self.conn.execute(
                select(room_witnesses.c.vkey)
                .join(witnesses, witnesses.c.vkey == room_witnesses.c.vkey)
                .where(room_witnesses.c.room_id == room_id, witnesses.c.account_id == account_id)
                .limit(1)
            )
        ).first()
        return row is not None

    async def log_access(self, account_id: str) -> dict[str, str]:
        """Room id -> why the account may read the room's log: ``member``, ``auditor``
        (granted), or ``witness`` (named in its policy: checkpoints only); the widest wins."""
        found: dict[str, str] = {}
        policy = (
            select(room_witnesses.c.room_id)
            .join(witnesses, witnesses.c.vkey == room_witnesses.c.vkey)
            .where(witnesses.c.account_id == account_id)
        )
        granted = select(room_auditors.c.room_id).where(room_auditors.c.account_id == account_id)
        member = select(room_members.c.room_id).where(room_members.c.account_id == account_id)
        for access, query in (("witness", policy), ("auditor", granted), ("member", member)):
            found |= {str(r[0]): access for r in await self.conn.execute(query)}
        return found

    async def muted(self, room_id: str) -> set[str]:
        """Accounts muted in the room."""
        return {str(r[0]) for r in await _MUTED.rows(self.conn, room_id=room_id)}

    async def set_state(
        self, room_id: str, *, mode: str, status: str, caucuses: list[str], muted: set[str]
    ) -> None:
        """Store the room's moderation state."""
        await self.conn.execute(
            update(rooms)
            .where(rooms.c.id == room_id)
            .values(mode=mode, status=status, caucuses=",".join(sorted(caucuses)))
        )
        before = await self.muted(room_id)
        if before - muted:
            await self.conn.execute(
                delete(room_mutes).where(
                    room_mutes.c.room_id == room_id,
                    room_mutes.c.account_id.in_(sorted(before - muted)),
                )
            )
        if muted - before:
            await self.conn.execute(
                room_mutes.insert(),
                [{"room_id": room_id, "account_id": a} for a in sorted(muted - before)],
            )
