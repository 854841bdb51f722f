"""Moderation (docs/design.md §4): a mediator's signed act on a room, checked, applied and
logged in one transaction. Members' clients replay the same acts from the log
with the same rules (`client_sdk.protocol.mediation`), so the server's word is
never needed to know a room's mode, caucuses, mutes or status.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.encoding import b64d
from client_sdk.protocol.errors import NotPermitted, ProtocolError, VerificationError
from client_sdk.protocol.mediation import RoomState
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import (
    Action,
    Moderation,
    SignedStatement,
    parse_statement,
    verify_statement,
)
from server.config import Settings
from server.errors import Conflict, InvalidInput, NotAllowed, NotFound
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
from server.services.room_state import current_roster, load_state, refusal_error, save_state
from server.storage.accounts import AccountRepository
from server.storage.database import Database
from server.storage.events import EventRepository, EventRow
from server.storage.rooms import RoomRepository


@dataclass(frozen=True, slots=True)
class ModerationResult:
    """Where a moderation act landed, its proof, and the room's state after it."""

    seq: int
    leaf_index: int
    created_at: int
    checkpoint: str
    inclusion_proof: list[bytes]
    state: RoomState


class ModerationService:
    """Applying mediators' signed acts."""

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

    async def moderate(
        self, principal: Principal, room_id: str, signed: SignedStatement
    ) -> ModerationResult:
        """Check, apply and log one act; retrying the same act returns its first result."""
        try:
            act = parse_statement(signed, Moderation)
        except ProtocolError as exc:
            raise InvalidInput(str(exc)) from exc
        check_submitted_by_signer(
            principal,
            room_id,
            act_room=act.room_id,
            signer_device=act.signer_device,
            what="moderation act",
        )
        now = self.clock()
        async with self.database.write() as conn:
            rooms = RoomRepository(conn)
            room = await rooms.get_for_update(room_id)
            if room is None or await rooms.side_of(room_id, principal.account_id) is None:
                raise NotFound("no such room")
            roster = await current_roster(conn, room)
            signer = roster.device_owner(principal.device_id)
            if signer is None or signer.side is not Side.MEDIATOR:
                raise NotAllowed("only a mediator of the room may moderate it")
            key = signer.signing_key_of(principal.device_id)
            try:
                verify_statement(signed, b64d(key), Moderation)
            except (VerificationError, ProtocolError) as exc:
                raise InvalidInput(f"moderation: {exc}") from exc
            events = EventRepository(conn)
            earlier = await events.by_message_id(room_id, act.moderation_id)
            if is_retry(earlier, signed.body_hash(), "moderation"):
                return await _result(conn, earlier)
            check_roster_version(act.roster_version, room.roster_version)
            state = await load_state(conn, room)
            try:
                after = state.apply(act, roster)
            except NotPermitted as exc:
                raise refusal_error(exc) from exc
            if act.action is Action.GRANT_AUDITOR:
                assert act.account_id is not None
                auditor = await AccountRepository(conn).get(act.account_id)
                if auditor is None or auditor.role != Role.AUDITOR.value:
                    raise InvalidInput(f"account {act.account_id} is not an enrolled auditor")
                if await rooms.is_auditor(room_id, act.account_id):
                    raise Conflict("this auditor already has the room's log")
                await rooms.grant_auditor(room_id, act.account_id, by=principal.account_id, now=now)
            appended = await self.log.append(
                conn,
                room_id,
                type="moderation",
                actor_device=principal.device_id,
                payload_hash=signed.body_hash(),
                signature=b64d(signed.signature),
                server_time=now,
            )
            seq = room.last_seq + 1
            await events.add(
                EventRow(
                    room_id=room_id,
                    seq=seq,
                    kind="moderation",
                    channel=None,
                    message_id=act.moderation_id,
                    sender_device=principal.device_id,
                    payload=signed.model_dump_json(),
                    payload_hash=signed.body_hash(),
                    leaf_index=appended.index,
                    created_at=now,
                )
            )
            await rooms.set_last_seq(room_id, seq)
            await save_state(conn, room_id, after)
            await self.fanout.stage(conn, room_id, seq)
        self.fanout.committed(room_id, seq)
        return ModerationResult(
            seq=seq,
            leaf_index=appended.index,
            created_at=now,
            checkpoint=appended.checkpoint,
            inclusion_proof=appended.inclusion_proof,
            state=after,
        )


async def _result(conn: AsyncConnection, earlier: EventRow) -> ModerationResult:
    """The first answer to an act, for a retry."""
    room_id, leaf_index = earlier.room_id, earlier.leaf_index
    checkpoint, proof = await proof_at_append(conn, room_id, leaf_index)
    fresh = await RoomRepository(conn).get(room_id)
    assert fresh is not None
    return ModerationResult(
        seq=earlier.seq,
        leaf_index=leaf_index,
        created_at=earlier.created_at,
        checkpoint=checkpoint,
        inclusion_proof=proof,
        state=await load_state(conn, fresh),
    )
