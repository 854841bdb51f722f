"""Room chains: each room's roster versions verified back to version 1 (every one signed
by a mediator of the one before), and the room's state replayed from its signed events.

`RoomChains` is the one owner of this per-room knowledge; the reader feeds it events
in order, the sender and the room operations ask it for the roster in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from client_sdk.client.directory import Directory
from client_sdk.client.http import HttpSession
from client_sdk.client.models import Message
from client_sdk.client.verify import verify_roster_step
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import (
    ForkedError,
    MemberAddedError,
    NotPermitted,
    ProtocolError,
    ReplayedError,
    StaleRosterError,
    VerificationError,
)
from client_sdk.protocol.instruments.acts import parse_act, verify_act
from client_sdk.protocol.instruments.base import Act, check_sealed
from client_sdk.protocol.instruments.ledger import Ledger, judge
from client_sdk.protocol.mediation import RoomState, Status
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import (
    Moderation,
    Roster,
    RosterMember,
    SignedStatement,
    verify_statement,
)
from client_sdk.protocol.wire.rooms import RoomOut, RosterOut


@dataclass(slots=True)
class RoomChain:
    """What this session verified about one room."""

    rosters: dict[int, tuple[Roster, SignedStatement]] = field(default_factory=dict)
    roster_seqs: dict[int, int] = field(default_factory=dict)
    """Roster version -> the event that carried it, as read in the event sequence."""
    claimed_seqs: dict[int, int] = field(default_factory=dict)
    """Roster version -> the event the server says carried it (checked when read)."""
    message_seqs: dict[str, int] = field(default_factory=dict)
    """Message (or moderation) id -> the event that carried it: each is delivered once."""
    state: RoomState = field(default_factory=RoomState)
    """Mode, caucuses, mutes and status, replayed from the signed moderation acts."""
    state_known: bool = False
    """Whether `state` was replayed from the room's first event (else it is unknown)."""
    position: int = 0
    """The last event replayed into `state`."""
    readable: dict[int, Message] = field(default_factory=dict)
    """Messages this device opened, by event (to check relays of them)."""
    leaf_hashes: dict[int, bytes] = field(default_factory=dict)
    """The leaf hash of every event checked, by sequence number."""
    ledger: Ledger = field(default_factory=Ledger)
    """Rounds, agreements and receipts, replayed from the instrument acts (when
    `state_known`)."""

    @property
    def newest(self) -> int:
        """The newest roster version verified (0 if none)."""
        return max(self.rosters, default=0)


class RoomChains:
    """Verified roster chains and replayed state of every room this client reads."""

    def __init__(self, http: HttpSession, directory: Directory, keystore: Keystore) -> None:
        self._http = http
        self._directory = directory
        self._keystore = keystore
        self._chains: dict[str, RoomChain] = {}
        self._roster_locks: dict[str, asyncio.Lock] = {}
        """Roster versions of a room are fetched and accepted one caller at a time."""
        self._replay_locks: dict[str, asyncio.Lock] = {}
        """Events of a room are replayed one batch at a time (concurrent readers)."""

    def chain(self, room_id: str) -> RoomChain:
        """The room's chain (empty until something of it is verified)."""
        return self._chains.setdefault(room_id, RoomChain())

    @asynccontextmanager
    async def replaying(self, room_id: str) -> AsyncIterator[RoomChain]:
        """Hold the room's replay while one batch of events is checked into it."""
        async with self._replay_locks.setdefault(room_id, asyncio.Lock()):
            yield self.chain(room_id)

    # --- rosters --------------------------------------------------------------------

    async def served(self, room_id: str, data: RoomOut) -> tuple[Roster, SignedStatement]:
        """The roster a room answer calls current, if the verified chain agrees.

        Never older than a version already verified: a server winding the room
        back could make us encrypt to a member since removed.
        """
        version = data.roster_version
        head = self._keystore.roster_head(room_id)
        newest = max(self.chain(room_id).newest, 0 if head is None else head.version)
        if version < newest:
            raise StaleRosterError(
                f"room {room_id}: the server shows roster version {version}, older than "
                f"version {newest} already verified"
            )
        roster, signed = await self.roster(room_id, version)
        if data.roster.body != signed.body:
            raise _roster_change(
                room_id,
                roster,
                data.roster.body,
                f"room {room_id}: the server's roster differs from the chain",
                otherwise=ForkedError,
            )
        return roster, signed

    async def current(self, room_id: str) -> tuple[Roster, SignedStatement]:
        """The room's current roster, as the server calls it and the chain verifies it."""
        data = await self._http.call(RoomOut, "GET", f"/v1/rooms/{room_id}")
        return await self.served(room_id, data)

    async def roster(self, room_id: str, version: int) -> tuple[Roster, SignedStatement]:
        """Roster `version` of a room, verifying every version up to it once."""
        async with self._roster_lock(room_id):
            return await self._roster(room_id, version)

    def signer(self, roster: Roster) -> RosterMember:
        """The member whose device signed `roster`: a mediator of the version before it
        (of itself for version 1), as this session verified the chain."""
        if roster.version == 1:
            signers: Roster | None = roster
        else:
            previous = self.chain(roster.room_id).rosters.get(roster.version - 1)
            signers = None if previous is None else previous[0]
        signer = None if signers is None else signers.device_owner(roster.signer_device)
        if signer is None:
            raise VerificationError(
                f"room {roster.room_id}: no verified signer of roster version {roster.version}"
            )
        return signer

    def carried_at(self, room_id: str, version: int) -> int:
        """The event that carried roster `version`: as read in the events, else as the
        server said when it served the version (0 if neither is known)."""
        chain = self.chain(room_id)
        return chain.roster_seqs.get(version) or chain.claimed_seqs.get(version, 0)

    async def accept(self, room_id: str, signed: SignedStatement) -> Roster:
        """Verify a roster version served as an event (and every version before it)."""
        async with self._roster_lock(room_id):
            return await self._accept(room_id, signed)

    def _roster_lock(self, room_id: str) -> asyncio.Lock:
        return self._roster_locks.setdefault(room_id, asyncio.Lock())

    async def _roster(self, room_id: str, version: int) -> tuple[Roster, SignedStatement]:
        chain = self.chain(room_id)
        for v in range(chain.newest + 1, version + 1):
            data = await self._http.call(RosterOut, "GET", f"/v1/rooms/{room_id}/rosters/{v}")
            if data.version != v:
                raise ProtocolError(f"room {room_id}: asked for roster {v}, got {data.version}")
            await self._accept(room_id, data.roster)
            chain.claimed_seqs[v] = data.seq
        if version not in chain.rosters:
            raise VerificationError(f"room {room_id}: no verified roster version {version}")
        return chain.rosters[version]

    async def _accept(self, room_id: str, signed: SignedStatement) -> Roster:
        chain = self.chain(room_id)
        version = signed.body.get("version")
        if not isinstance(version, int) or version < 1:
            raise VerificationError(f"room {room_id}: roster without a valid version")
        if version in chain.rosters:
            if chain.rosters[version][1].body != signed.body:
                raise ForkedError(f"room {room_id}: two different rosters for version {version}")
            return chain.rosters[version][0]
        if version > chain.newest + 1:
            await self._roster(room_id, version - 1)
        previous = chain.rosters.get(version - 1)
        try:
            roster = verify_roster_step(signed, room_id=room_id, previous=previous)
        except VerificationError as exc:
            if previous is None:
                raise
            raise _roster_change(room_id, previous[0], signed.body, str(exc)) from exc
        signer = (previous[0] if previous else roster).device_owner(roster.signer_device)
        assert signer is not None
        directory = await self._directory.account(signer.account_id)
        if directory.role is not Role.MEDIATOR or b64e(directory.account_key) != signer.account_key:
            raise VerificationError(
                f"room {room_id}: roster version {roster.version} signer is not a mediator "
                "in the directory"
            )
        if directory.certified_device(roster.signer_device) is None:
            raise VerificationError(
                f"room {room_id}: roster signer device is not certified by its account"
            )
        # The newest version verified is kept in the keystore, so that a later
        # session (or another process) refuses a different roster for it too.
        self._keystore.set_roster_head(room_id, roster.version, signed.body_hash())
        chain.rosters[roster.version] = (roster, signed)
        return roster

    # --- replaying events (call under `replaying`) ----------------------------------

    @staticmethod
    def advance(chain: RoomChain, seq: int) -> None:
        """Event `seq` is next: the state stays known only if read without a gap."""
        if seq == 1:
            chain.state, chain.state_known, chain.ledger = RoomState(), True, Ledger()
        elif chain.position != seq - 1:
            chain.state_known = False
        chain.position = seq

    async def roster_event(
        self, room_id: str, chain: RoomChain, signed: SignedStatement, seq: int
    ) -> Roster:
        """A roster carried by event `seq`: verified, and carried by no other event."""
        roster = await self.accept(room_id, signed)
        seen = chain.roster_seqs.setdefault(roster.version, seq)
        if seen != seq:
            raise ReplayedError(
                f"room {room_id}: event {seq} replays roster version {roster.version} "
                f"of event {seen}"
            )
        return roster

    async def moderation_event(
        self, room_id: str, chain: RoomChain, signed: SignedStatement, seq: int
    ) -> None:
        """Check a moderation act against the roster in force and replay it."""
        try:
            act = Moderation.model_validate(signed.body)
        except ValidationError as exc:
            raise VerificationError(f"room {room_id}: event {seq} is not a moderation act") from exc
        if act.room_id != room_id:
            raise VerificationError(f"room {room_id}: event {seq} moderates another room")
        in_force = max((v for v, at in chain.roster_seqs.items() if at < seq), default=None)
        if in_force is not None and act.roster_version != in_force:
            raise StaleRosterError(
                f"room {room_id}: event {seq} names roster version {act.roster_version}, "
                f"but version {in_force} was in force"
            )
        roster, _ = await self.roster(room_id, act.roster_version)
        signer = roster.device_owner(act.signer_device)
        if signer is None or signer.side is not Side.MEDIATOR:
            raise VerificationError(
                f"room {room_id}: event {seq} is a moderation act not signed by a mediator"
            )
        key = signer.signing_key_of(act.signer_device)
        try:
            verify_statement(signed, b64d(key), Moderation)
        except VerificationError as exc:
            raise VerificationError(f"room {room_id}: event {seq}: {exc}") from exc
        first = chain.message_seqs.setdefault(act.moderation_id, seq)
        if first != seq:
            raise ReplayedError(
                f"room {room_id}: event {seq} replays moderation act of event {first}"
            )
        if chain.state_known:
            try:
                chain.state = chain.state.apply(act, roster)
            except NotPermitted as exc:
                raise VerificationError(
                    f"room {room_id}: event {seq}: the server logged an act the room's "
                    f"rules refuse: {exc}"
                ) from exc

    async def instrument_event(
        self, room_id: str, chain: RoomChain, signed: SignedStatement, seq: int, server_time: int
    ) -> Act:
        """Check an instrument act against the roster in force and, where the room's
        instrument states are known, judge and replay it by the rules."""
        version = signed.body.get("roster_version")
        in_force = max((v for v, at in chain.roster_seqs.items() if at < seq), default=None)
        if not isinstance(version, int) or (in_force is not None and version != in_force):
            raise StaleRosterError(
                f"room {room_id}: event {seq} names roster version {version}, "
                f"but version {in_force} was in force"
            )
        roster, _ = await self.roster(room_id, version)
        name = signed.body.get("act")
        if chain.state_known and chain.state.status is not Status.OPEN:
            raise VerificationError(
                f"room {room_id}: event {seq} is a {name} act in a {chain.state.status} room"
            )
        try:
            if chain.state_known:
                judged = judge(
                    signed,
                    chain.ledger.view(_keys_of(signed)),
                    room_id=room_id,
                    roster=roster,
                    seq=seq,
                    server_time=server_time,
                    leaf_hash=chain.leaf_hashes.get,
                )
                chain.ledger.record(judged)
                found = judged.act
            else:  # the rules need every act from the start: check what stands alone
                found = _check_alone(signed, roster)
        except NotPermitted as exc:
            raise VerificationError(
                f"room {room_id}: event {seq}: the server logged a {name} act the rules "
                f"refuse: {exc}"
            ) from exc
        except VerificationError as exc:
            raise VerificationError(f"room {room_id}: event {seq}: {exc}") from exc
        first = chain.message_seqs.setdefault(found.instrument_id, seq)
        if first != seq:
            raise ReplayedError(
                f"room {room_id}: event {seq} replays the instrument act of event {first}"
            )
        return found

    @staticmethod
    def remember(chain: RoomChain, message: Message) -> None:
        """A message this device opened (a later relay of it is checked against it)."""
        chain.readable[message.seq] = message

    @staticmethod
    def check_post(
        room_id: str, chain: RoomChain, seq: int, roster: Roster, sender: RosterMember, channel: str
    ) -> None:
        """A message of event `seq` is allowed by the room's replayed state (if known)."""
        if chain.state_known:
            try:
                chain.state.check_post(roster, sender.account_id, channel)
            except NotPermitted as exc:
                raise VerificationError(
                    f"room {room_id}: event {seq} from {sender.name} breaks the room's rules: {exc}"
                ) from exc

    @staticmethod
    def superseded(chain: RoomChain, seq: int, roster_version: int) -> tuple[int, int] | None:
        """The first roster version newer than `roster_version` that took effect before
        event `seq`, and the event that carried it (None if the version was in force)."""
        newer = [(v, at) for v, at in chain.roster_seqs.items() if v > roster_version and at < seq]
        return min(newer, default=None)

    @staticmethod
    def message_event(room_id: str, chain: RoomChain, seq: int, *, message_id: str) -> None:
        """A message carried by event `seq` is carried by no other event."""
        first = chain.message_seqs.setdefault(message_id, seq)
        if first != seq:
            raise ReplayedError(
                f"room {room_id}: event {seq} replays message {message_id}, "
                f"first seen at event {first}"
            )


def _roster_change(
    room_id: str,
    previous: Roster,
    body: dict[str, Any],
    reason: str,
    *,
    otherwise: type[VerificationError] = VerificationError,
) -> VerificationError:
    """The error for a roster the chain refuses: `MemberAddedError` if it lists a device
    `previous` (the version verified before) does not, else `otherwise`."""
    try:
        served = Roster.model_validate(body)
    except ValidationError:
        return otherwise(reason)
    added = sorted(set(served.device_ids()) - set(previous.device_ids()))
    if not added:
        return otherwise(reason)
    names = sorted({m.name for m in served.members for d in m.devices if d.device_id in added})
    return MemberAddedError(
        f"{reason}; it would add {', '.join(names)} (device {', '.join(added)}) to room "
        f"{room_id} without a mediator's signature"
    )


def _keys_of(signed: SignedStatement) -> list[str]:
    """The state keys of the act a statement carries ([] if it is not one: `judge`
    then says why)."""
    try:
        return parse_act(signed).keys()
    except ProtocolError:
        return []


def _check_alone(signed: SignedStatement, roster: Roster) -> Act:
    """An act's signature by a device of the roster and its sealed part as sealed to its
    own channel: what can be checked without the room's earlier acts."""
    device = signed.body.get("signer_device")
    signer = roster.device_owner(device) if isinstance(device, str) else None
    if signer is None:
        raise VerificationError("the act is not signed by a device of the roster in force")
    key = b64d(signer.signing_key_of(str(device)))
    act = verify_act(signed, key)
    channel = None if act.sealed is None else act.sealed.header.channel
    check_sealed(act, channel, roster, key)
    return act
