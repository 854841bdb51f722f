"""Rooms and their signed rosters (docs/design.md §4).

The server never writes a roster: a mediator's device signs each version and
the server checks it against the directory (every member enrolled with the
listed account key, every listed device exactly that account's active
devices) before storing and logging it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.leaf import room_origin
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import (
    Roster,
    SignedStatement,
    key_fingerprint,
    parse_statement,
    verify_statement,
)
from server.config import Settings
from server.errors import Conflict, InvalidInput, NotAllowed, NotFound
from server.log.appender import Appended, LogWriter
from server.realtime.fanout import Fanout
from server.services.common import Clock, Principal
from server.storage.accounts import AccountRepository
from server.storage.database import Database
from server.storage.events import EventRepository, EventRow
from server.storage.logs import LogRepository
from server.storage.rooms import RoomRepository, RoomRow, RosterRow

_SIDES_BY_ROLE: dict[Role, set[Side]] = {
    Role.MEDIATOR: {Side.MEDIATOR, Side.OBSERVER},
    Role.PARTY: {Side.A, Side.B, Side.OBSERVER},
    Role.ADMIN: {Side.OBSERVER},
    Role.AUDITOR: set(),
}


@dataclass(frozen=True, slots=True)
class RoomView:
    """A room and its current roster, as its members see them."""

    room: RoomRow
    roster: RosterRow
    side: str
    logged: Appended | None = None
    """The roster's leaf and proof, when this view answers a roster change."""
    rekey: list[RekeyNeed] = field(default_factory=list)
    """Where the roster and its members' active devices differ: the room needs re-keying."""


@dataclass(frozen=True, slots=True)
class RekeyNeed:
    """A device the roster lists that was revoked, or one a member linked since."""

    account_id: str
    device_id: str
    reason: str  # revoked | linked


class RoomService:
    """Creating rooms, reading them and changing their membership."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Clock,
        fanout: Fanout,
        log: LogWriter,
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.fanout = fanout
        self.log = log

    async def create(
        self, principal: Principal, signed: SignedStatement, *, require_verified: bool | None
    ) -> RoomView:
        """Create a room from its first roster, signed by the creating mediator."""
        if principal.role is not Role.MEDIATOR:
            raise NotAllowed("only mediators may create rooms")
        roster = _parse_roster(signed)
        if roster.version != 1 or roster.prev_hash is not None:
            raise InvalidInput("a new room's roster is version 1 with no previous hash")
        if require_verified is not None and require_verified != roster.policy.require_verified:
            raise InvalidInput("require_verified must agree with the signed roster's policy")
        now = self.clock()
        async with self.database.write() as conn:
            rooms = RoomRepository(conn)
            # Rooms and logs share ids: a room id must not name an existing log either.
            taken = await LogRepository(conn).head(roster.room_id) is not None
            if taken or await rooms.get(roster.room_id) is not None:
                raise Conflict("a room with this id exists")
            members = await _check_roster(conn, principal, roster, signed, signers=roster)
            await rooms.create(
                room_id=roster.room_id,
                title=roster.title,
                created_by=principal.account_id,
                require_verified=roster.policy.require_verified,
                now=now,
            )
            origin = room_origin(self.settings.log_origin_host, roster.room_id)
            await self.log.create(conn, log_id=roster.room_id, origin=origin, now=now)
            seq, appended = await _store_roster(
                conn, self.log, roster, signed, members, last_seq=0, now=now
            )
            await self.fanout.stage(conn, roster.room_id, seq)
            view = await _view(conn, roster.room_id, principal.account_id)
        self.fanout.committed(roster.room_id, seq)
        return replace(view, logged=appended)

    async def update_roster(
        self, principal: Principal, room_id: str, signed: SignedStatement
    ) -> RoomView:
        """Store the next roster version, signed by a mediator of the current one."""
        roster = _parse_roster(signed)
        if roster.room_id != room_id:
            raise InvalidInput("roster is for another room")
        now = self.clock()
        async with self.database.write() as conn:
            rooms = RoomRepository(conn)
            room = await _member_room(conn, room_id, principal, for_update=True)
            if room.status == "closed":
                raise Conflict("the room is closed")
            current = await rooms.roster(room_id, room.roster_version)
            assert current is not None
            if roster.version != room.roster_version + 1:
                raise Conflict(
                    f"stale roster: the room is at version {room.roster_version}, "
                    f"so the next is {room.roster_version + 1}"
                )
            if roster.prev_hash != b64e(current.body_hash):
                raise InvalidInput("roster does not chain to the current version")
            if roster.title != room.title:
                raise InvalidInput("a roster cannot change the room's title")
            previous = _parse_roster(SignedStatement.model_validate_json(current.statement))
            members = await _check_roster(conn, principal, roster, signed, signers=previous)
            seq, appended = await _store_roster(
                conn, self.log, roster, signed, members, last_seq=room.last_seq, now=now
            )
            await self.fanout.stage(conn, room_id, seq)
            view = await _view(conn, room_id, principal.account_id)
        self.fanout.committed(room_id, seq)
        return replace(view, logged=appended)

    async def get(self, principal: Principal, room_id: str) -> RoomView:
        """A room the caller is a member of."""
        async with self.database.read() as conn:
            await _member_room(conn, room_id, principal)
            return await _view(conn, room_id, principal.account_id)

    async def roster(self, principal: Principal, room_id: str, version: int) -> RosterRow:
        """One roster version of a room the caller is a member of."""
        async with self.database.read() as conn:
            room = await _member_room(conn, room_id, principal)
            # Only versions the room had: others are unknown (and may not fit the column).
            known = 1 <= version <= room.roster_version
            row = await RoomRepository(conn).roster(room_id, version) if known else None
        if row is None:
            raise NotFound(f"no roster version {version}")
        return row

    async def list(self, principal: Principal) -> list[RoomRow]:
        """Rooms the caller is a member of."""
        async with self.database.read() as conn:
            return await RoomRepository(conn).of_account(principal.account_id)


async def _member_room(
    conn: AsyncConnection, room_id: str, principal: Principal, *, for_update: bool = False
) -> RoomRow:
    rooms = RoomRepository(conn)
    room = await (rooms.get_for_update(room_id) if for_update else rooms.get(room_id))
    if room is None or await rooms.side_of(room_id, principal.account_id) is None:
        # Same answer for "no such room" and "not yours": ids are not an oracle.
        raise NotFound("no such room")
    return room


async def _view(conn: AsyncConnection, room_id: str, account_id: str) -> RoomView:
    rooms = RoomRepository(conn)
    room = await rooms.get(room_id)
    side = await rooms.side_of(room_id, account_id)
    if room is None or side is None:
        raise NotFound("no such room")
    roster = await rooms.roster(room_id, room.roster_version)
    assert roster is not None
    return RoomView(room=room, roster=roster, side=side, rekey=await rekey_needs(conn, roster))


async def rekey_needs(conn: AsyncConnection, roster: RosterRow) -> list[RekeyNeed]:
    """Every listed device that was revoked, and every active device of a member that
    the roster lacks (linked since): a mediator re-keys by signing a new version.

    Read on every room read (each send reads its room): the stored roster was checked
    when it was stored, so its member and device ids are read from its JSON as is."""
    members = json.loads(roster.statement)["body"]["members"]
    listed = {m["account_id"]: {d["device_id"] for d in m["devices"]} for m in members}
    active: dict[str, set[str]] = {}
    for device_id, account_id in await RoomRepository(conn).active_member_devices(roster.room_id):
        active.setdefault(account_id, set()).add(device_id)
    needs = []
    for account_id, devices in listed.items():
        now_active = active.get(account_id, set())
        needs += [RekeyNeed(account_id, d, "revoked") for d in sorted(devices - now_active)]
        needs += [RekeyNeed(account_id, d, "linked") for d in sorted(now_active - devices)]
    return needs


def _parse_roster(signed: SignedStatement) -> Roster:
    try:
        roster = parse_statement(signed, Roster)
    except ProtocolError as exc:
        raise InvalidInput(str(exc)) from exc
    if "\x00" in roster.title:  # PostgreSQL text cannot hold NUL
        raise InvalidInput("a room title must not contain NUL characters")
    return roster


async def _check_roster(
    conn: AsyncConnection,
    principal: Principal,
    roster: Roster,
    signed: SignedStatement,
    *,
    signers: Roster,
) -> dict[str, str]:
    """Check a roster against the directory; return account id -> side."""
    if roster.signer_device != principal.device_id:
        raise InvalidInput("a roster must be signed by the device that submits it")
    signer = signers.device_owner(principal.device_id)
    if signer is None or signer.side is not Side.MEDIATOR:
        raise NotAllowed("only a mediator of the room may sign its roster")
    if roster.device_owner(principal.device_id) is None and signers is roster:
        raise InvalidInput("the creating mediator must be in the first roster")
    signer_key = signer.signing_key_of(principal.device_id)
    try:
        verify_statement(signed, b64d(signer_key), Roster)
    except (VerificationError, ProtocolError) as exc:
        raise InvalidInput(f"roster: {exc}") from exc

    ids = [m.account_id for m in roster.members]
    if len(set(ids)) != len(ids):
        raise InvalidInput("an account appears twice in the roster")
    if not any(m.side is Side.MEDIATOR for m in roster.members):
        raise InvalidInput("a roster needs at least one mediator")
    repo = AccountRepository(conn)
    active = await repo.devices_of(ids)
    for member in roster.members:
        account = await repo.get(member.account_id)
        if account is None or account.status != "active" or account.account_key is None:
            raise InvalidInput(f"account {member.account_id} is not enrolled")
        if member.account_key != b64e(account.account_key):
            raise InvalidInput(f"account {member.account_id}: account key does not match")
        vouched = member.vouched_key_sha256
        if vouched is not None and vouched != key_fingerprint(account.account_key):
            raise InvalidInput(f"account {member.account_id}: the vouch names another key")
        if member.name != account.name:
            raise InvalidInput(f"account {member.account_id}: name does not match")
        if member.side not in _SIDES_BY_ROLE[Role(account.role)]:
            raise InvalidInput(
                f"account {member.account_id} ({account.role}) cannot sit on side {member.side}"
            )
        listed = {(d.device_id, d.signing_key) for d in member.devices}
        actual = {(d.id, b64e(d.signing_key)) for d in active if d.account_id == account.id}
        if listed != actual:
            raise InvalidInput(
                f"account {member.account_id}: devices must be exactly its active devices"
            )
    return {m.account_id: m.side.value for m in roster.members}


async def _store_roster(
    conn: AsyncConnection,
    log: LogWriter,
    roster: Roster,
    signed: SignedStatement,
    members: dict[str, str],
    *,
    last_seq: int,
    now: int,
) -> tuple[int, Appended]:
    appended = await log.append(
        conn,
        roster.room_id,
        type="roster",
        actor_device=roster.signer_device,
        payload_hash=signed.body_hash(),
        signature=b64d(signed.signature),
        server_time=now,
    )
    seq = last_seq + 1
    payload = signed.model_dump_json()
    await EventRepository(conn).add(
        EventRow(
            room_id=roster.room_id,
            seq=seq,
            kind="roster",
            channel=None,
            message_id=None,
            sender_device=roster.signer_device,
            payload=payload,
            payload_hash=signed.body_hash(),
            leaf_index=appended.index,
            created_at=now,
        )
    )
    rooms = RoomRepository(conn)
    await rooms.add_roster(
        room_id=roster.room_id,
        version=roster.version,
        statement=payload,
        body_hash=signed.body_hash(),
        seq=seq,
        members=members,
        require_verified=roster.policy.require_verified,
        witness_keys=list(roster.policy.witnesses),
    )
    await rooms.set_last_seq(roster.room_id, seq)
    return seq, appended
