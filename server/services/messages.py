"""Sending and reading messages (docs/design.md §5).

The server sees only ciphertext. It checks what it can without keys —
membership, room state, the exact recipient set of the channel at the stated
roster version, the sender's signature, sizes — and then, in one transaction,
stores the envelope, appends its log leaf and assigns the room sequence
number. It answers only after the commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.encoding import b64d, sha256
from client_sdk.protocol.envelope import Envelope, check_envelope
from client_sdk.protocol.errors import NotPermitted, ProtocolError, VerificationError
from client_sdk.protocol.mediation import channel_devices
from client_sdk.protocol.statements import Roster
from server.config import Settings
from server.errors import InvalidInput, NotAllowed, NotFound, TooLarge
from server.log.appender import LogWriter
from server.log.proofs import ProofReader, proof_at_append
from server.realtime.fanout import Fanout
from server.services.common import Clock, Principal, check_roster_version, is_retry
from server.services.room_state import current_roster, refusal_error, sender_state
from server.storage.database import Database
from server.storage.events import EventRepository, EventRow
from server.storage.logs import LogRepository
from server.storage.rooms import RoomRepository

_ROSTER_CACHE_ROOMS = 1024


@dataclass(frozen=True, slots=True)
class SendResult:
    """Where an accepted message landed."""

    seq: int
    leaf_index: int
    message_id: str
    created_at: int
    checkpoint: str
    inclusion_proof: list[bytes]


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events with what proves them: each leaf and its inclusion in one checkpoint,
    and that checkpoint's consistency with the size the reader knew (`since`)."""

    events: list[EventRow]
    leaves: dict[int, bytes]
    inclusion_proofs: dict[int, list[bytes]]
    size: int
    checkpoint: str
    since: int
    consistency_proof: list[bytes]


@dataclass(slots=True)
class PreparedBatch:
    """A stream batch built once, after the commit, from the rows just written; every
    subscriber that stands right before it sends the same encoded frame."""

    batch: EventBatch
    frame: str | None = None
    """The encoded frame, set by the first subscriber that sends it."""


class MessageService:
    """Accepting envelopes and paging through a room's events."""

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
        # The newest parsed roster per room. A committed roster version never changes
        # (the table is append-only), so it is remembered only after a commit.
        self._rosters: dict[str, tuple[int, Roster]] = {}

    async def send(self, principal: Principal, room_id: str, envelope: Envelope) -> SendResult:
        """Store and log one envelope; a retry with the same message id gets the same answer."""
        try:
            return await self._send(principal, room_id, envelope)
        except IntegrityError:
            # On PostgreSQL a retry that waited for the room's lock while its first copy
            # committed read "not used yet" from the snapshot its statement began with
            # (READ COMMITTED snapshots statements, not locks), and the unique message id
            # stopped its insert: it is answered from the log like any retry.
            async with self.database.read() as conn:
                earlier = await EventRepository(conn).by_message_id(
                    room_id, envelope.header.message_id
                )
                payload_hash = sha256(envelope.signed_bytes())
                if not is_retry(earlier, payload_hash, "message", device=principal.device_id):
                    raise
                return await _result(conn, earlier)

    async def _send(self, principal: Principal, room_id: str, envelope: Envelope) -> SendResult:
        header = envelope.header
        if len(header.recipients) > self.settings.max_recipients:
            raise TooLarge(f"at most {self.settings.max_recipients} recipients per message")
        if header.room_id != room_id:
            raise InvalidInput("envelope is addressed to another room")
        if header.sender_device != principal.device_id:
            raise InvalidInput("envelope must be sent by the device that signed it")
        # Stored as pydantic writes it: readers parse it, and what the sender signed is
        # hashed from its canonical form below (RFC 8785 in Python costs 0.3 ms here).
        payload = envelope.model_dump_json()
        # The leaf commits to exactly what the sender signed (header and wraps; the
        # header commits to the ciphertext), so auditors can check the signature
        # without the ciphertext, and it survives a retention purge.
        signed = envelope.signed_bytes()
        payload_hash = sha256(signed)
        now = self.clock()
        async with self.database.write() as conn:
            rooms = RoomRepository(conn)
            context = await rooms.send_context(room_id, principal.account_id, header.message_id)
            room = context.room
            if room is None or context.side is None:
                raise NotFound("no such room")
            events = EventRepository(conn)
            earlier = (
                await events.by_message_id(room_id, header.message_id) if context.retried else None
            )
            if is_retry(earlier, payload_hash, "message", device=principal.device_id):
                return await _result(conn, earlier)
            cached = self._rosters.get(room_id)
            if cached is not None and cached[0] == room.roster_version:
                roster, fresh = cached[1], False
            else:
                roster, fresh = await current_roster(conn, room), True
            state = sender_state(room, principal.account_id, muted=context.muted)
            try:
                state.check_post(roster, principal.account_id, header.channel)
            except NotPermitted as exc:
                raise refusal_error(exc) from exc
            check_roster_version(header.roster_version, room.roster_version)
            if header.recipients != channel_devices(roster, header.channel):
                raise InvalidInput(
                    f"recipients must be exactly the devices of {header.channel} at roster "
                    f"version {room.roster_version}"
                )
            sender = roster.device_owner(principal.device_id)
            if sender is None:
                raise NotAllowed("this device is not in the room's roster")
            sender_key = sender.signing_key_of(principal.device_id)
            try:
                check_envelope(envelope, b64d(sender_key), signed=signed)
            except (VerificationError, ProtocolError) as exc:
                raise InvalidInput(f"envelope: {exc}") from exc
            assert context.log is not None  # a room's log is created with it
            planned = await self.log.plan(
                conn,
                context.log,
                type="message",
                actor_device=principal.device_id,
                payload_hash=payload_hash,
                signature=b64d(envelope.signature),
                server_time=now,
            )
            row = EventRow(
                room_id=room_id,
                seq=room.last_seq + 1,
                kind="message",
                channel=header.channel,
                message_id=header.message_id,
                sender_device=principal.device_id,
                payload=payload,
                payload_hash=payload_hash,
                leaf_index=planned.appended.index,
                created_at=now,
            )
            # The leaf, its nodes and checkpoint, the event, the room's counter and the
            # replicas' notification: one statement (one round trip) on PostgreSQL.
            version = await events.add_appended(
                row, planned.writes, self.fanout.notice(room_id, row.seq)
            )
            appended = self.log.written(planned, version=version)
        self.fanout.committed(
            room_id,
            row.seq,
            PreparedBatch(
                EventBatch(
                    events=[row],
                    leaves={row.leaf_index: appended.leaf},
                    inclusion_proofs={row.leaf_index: appended.inclusion_proof},
                    size=appended.index + 1,
                    checkpoint=appended.checkpoint,
                    since=appended.index,
                    consistency_proof=appended.consistency_proof,
                )
            ),
        )
        if fresh:
            self._remember_roster(room_id, room.roster_version, roster)
        return SendResult(
            seq=row.seq,
            leaf_index=row.leaf_index,
            message_id=header.message_id,
            created_at=row.created_at,
            checkpoint=appended.checkpoint,
            inclusion_proof=appended.inclusion_proof,
        )

    def _remember_roster(self, room_id: str, version: int, roster: Roster) -> None:
        if len(self._rosters) >= _ROSTER_CACHE_ROOMS:
            self._rosters.pop(next(iter(self._rosters)))
        self._rosters[room_id] = (version, roster)

    async def events(
        self, principal: Principal, room_id: str, *, after: int, limit: int, since: int = 0
    ) -> EventBatch:
        """Events after `after`, for a member of the room, with their proofs against the
        newest checkpoint and that checkpoint's consistency with size `since`."""
        async with self.database.read() as conn:
            rooms = RoomRepository(conn)
            if await rooms.side_of(room_id, principal.account_id) is None:
                raise NotFound("no such room")
            rows = await EventRepository(conn).page(room_id, after=after, limit=limit)
            logs = LogRepository(conn)
            checkpoint = await logs.checkpoint(room_id)
            assert checkpoint is not None  # a room's log starts with its first roster
            if since > checkpoint.size:
                raise InvalidInput(f"since={since} is beyond the log's size {checkpoint.size}")
            reader = ProofReader(conn, room_id)
            indexes = [r.leaf_index for r in rows]
            proofs = await reader.inclusions(indexes, checkpoint.size)
            entries = (
                await logs.entries(room_id, start=indexes[0], end=indexes[-1] + 1) if rows else []
            )
            return EventBatch(
                events=rows,
                leaves={e.idx: e.leaf for e in entries},
                inclusion_proofs=dict(zip(indexes, proofs, strict=True)),
                size=checkpoint.size,
                checkpoint=checkpoint.note,
                since=since,
                consistency_proof=await reader.consistency(since, checkpoint.size),
            )

    async def check_member(self, principal: Principal, room_id: str) -> None:
        """Raise `NotFound` unless the caller is a member of the room."""
        async with self.database.read() as conn:
            if await RoomRepository(conn).side_of(room_id, principal.account_id) is None:
                raise NotFound("no such room")


async def _result(conn: AsyncConnection, row: EventRow) -> SendResult:
    """The original answer to a message, for a retried send."""
    assert row.message_id is not None
    checkpoint, proof = await proof_at_append(conn, row.room_id, row.leaf_index)
    return SendResult(
        seq=row.seq,
        leaf_index=row.leaf_index,
        message_id=row.message_id,
        created_at=row.created_at,
        checkpoint=checkpoint,
        inclusion_proof=proof,
    )


def event_payload(row: EventRow) -> dict[str, Any] | None:
    """An event's stored payload as JSON, or None once purged by retention."""
    if row.payload is None:
        return None
    parsed: dict[str, Any] = json.loads(row.payload)
    return parsed
