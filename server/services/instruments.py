"""Instrument acts (docs/design.md §7): receipts, sealed-offer rounds, agreements.

The server judges an act with the same pure rules members and auditors replay
(`client_sdk.protocol.instruments.ledger.judge`), over the states it keeps for
the keys the act names, and then, in one transaction, logs the act, stores the
event and the changed states. It never sees what the sealed part says.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.encoding import b64d
from client_sdk.protocol.errors import NotPermitted, ProtocolError, VerificationError
from client_sdk.protocol.instruments.acts import dump_state, load_state, parse_act
from client_sdk.protocol.instruments.ledger import judge
from client_sdk.protocol.mediation import Status
from client_sdk.protocol.statements import SignedStatement
from server.config import Settings
from server.errors import Conflict, InvalidInput, NotFound
from server.log.appender import LogWriter
from server.log.proofs import proof_at_append
from server.realtime.fanout import Fanout
from server.services.common import (
    Clock,
    Principal,
    check_roster_version,
    check_submitted_by_signer,
    is_retry,
)
from server.services.room_state import current_roster, refusal_error
from server.storage.database import Database
from server.storage.events import EventRepository, EventRow
from server.storage.instruments import InstrumentRepository
from server.storage.logs import LogRepository
from server.storage.rooms import RoomRepository

KIND = "instrument"


@dataclass(frozen=True, slots=True)
class ActResult:
    """Where an act landed, and its proof."""

    seq: int
    leaf_index: int
    instrument_id: str
    created_at: int
    checkpoint: str
    inclusion_proof: list[bytes]


class InstrumentService:
    """Judging and logging members' instrument acts."""

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

    async def act(self, principal: Principal, room_id: str, signed: SignedStatement) -> ActResult:
        """Judge, apply and log one act; retrying the same act returns its first result."""
        try:
            act = parse_act(signed)
        except ProtocolError as exc:
            raise InvalidInput(str(exc)) from exc
        check_submitted_by_signer(
            principal, room_id, act_room=act.room_id, signer_device=act.signer_device, what="act"
        )
        payload_hash = signed.body_hash()
        now = self.clock()
        async with self.database.write() as conn:
            rooms = RoomRepository(conn)
            room, side = await rooms.get_for_update_with_side(room_id, principal.account_id)
            if room is None or side is None:
                raise NotFound("no such room")
            events = EventRepository(conn)
            earlier = await events.by_message_id(room_id, act.instrument_id)
            if is_retry(earlier, payload_hash, "instrument"):
                return await _result(conn, earlier)
            check_roster_version(act.roster_version, room.roster_version)
            if room.status != Status.OPEN.value:
                raise Conflict(f"the room is {room.status}")
            roster = await current_roster(conn, room)
            store = InstrumentRepository(conn)
            states = {k: load_state(v) for k, v in (await store.get(room_id, act.keys())).items()}
            seq = room.last_seq + 1
            leaves = await _leaf_hashes(conn, room_id, act.leaf_refs(), before=seq)
            try:
                judged = judge(
                    signed,
                    states,
                    room_id=room_id,
                    roster=roster,
                    seq=seq,
                    server_time=now,
                    leaf_hash=leaves.get,
                )
            except NotPermitted as exc:
                raise refusal_error(exc) from exc
            except VerificationError as exc:
                raise InvalidInput(f"{act.act}: {exc}") from exc
            if act.sealed is not None and len(act.sealed.header.recipients) > (
                self.settings.max_recipients
            ):
                raise InvalidInput(f"at most {self.settings.max_recipients} recipients")
            appended = await self.log.append(
                conn,
                room_id,
                type=KIND,
                actor_device=principal.device_id,
                payload_hash=payload_hash,
                signature=b64d(signed.signature),
                server_time=now,
            )
            await events.add(
                EventRow(
                    room_id=room_id,
                    seq=seq,
                    kind=KIND,
                    channel=judged.channel,
                    message_id=act.instrument_id,
                    sender_device=principal.device_id,
                    payload=signed.model_dump_json(),
                    payload_hash=payload_hash,
                    leaf_index=appended.index,
                    created_at=now,
                )
            )
            await rooms.set_last_seq(room_id, seq)
            await store.put(
                room_id,
                {key: (state.kind, dump_state(state)) for key, state in judged.changes.items()},
                seq,
            )
            await self.fanout.stage(conn, room_id, seq)
        self.fanout.committed(room_id, seq)
        return ActResult(
            seq=seq,
            leaf_index=appended.index,
            instrument_id=act.instrument_id,
            created_at=now,
            checkpoint=appended.checkpoint,
            inclusion_proof=appended.inclusion_proof,
        )


async def _leaf_hashes(
    conn: AsyncConnection, room_id: str, refs: dict[int, str], *, before: int
) -> dict[int, bytes]:
    """The leaf hash of each earlier event an act names (events are leaves seq - 1)."""
    found: dict[int, bytes] = {}
    logs = LogRepository(conn)
    for seq in refs:
        if 1 <= seq < before:
            entries = await logs.entries(room_id, start=seq - 1, end=seq)
            if entries:
                found[seq] = entries[0].leaf_hash
    return found


async def _result(conn: AsyncConnection, earlier: EventRow) -> ActResult:
    """The first answer to an act, for a retry."""
    assert earlier.message_id is not None
    checkpoint, proof = await proof_at_append(conn, earlier.room_id, earlier.leaf_index)
    return ActResult(
        seq=earlier.seq,
        leaf_index=earlier.leaf_index,
        instrument_id=earlier.message_id,
        created_at=earlier.created_at,
        checkpoint=checkpoint,
        inclusion_proof=proof,
    )
