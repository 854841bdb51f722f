"""Room operations: creating rooms, changing their rosters and policy (signed here),
moderation acts, and rooms as the verified chain and replayed state show them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pydantic import ValidationError

from client_sdk.client.chains import RoomChains
from client_sdk.client.directory import Directory
from client_sdk.client.helpers import (
    Clock,
    dump,
    party_side,
    roster_member,
)
from client_sdk.client.http import HttpSession
from client_sdk.client.logs import Logged, LogVerifier
from client_sdk.client.models import (
    Member,
    RekeyNotice,
    Room,
    RoomStateView,
)
from client_sdk.client.reader import Reader
from client_sdk.client.vouching import member_trust, with_vouches
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import new_message_id
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.models import Side
from client_sdk.protocol.statements import (
    Action,
    Mode,
    Moderation,
    RoomPolicy,
    Roster,
    RosterMember,
    SignedStatement,
    sign_statement,
)
from client_sdk.protocol.wire.logs import LoggedOut
from client_sdk.protocol.wire.rooms import ModerationOut, RoomOut, RoomSummary


class RoomOperations:
    """What a member does with rooms (mediators: create, change, moderate)."""

    def __init__(
        self,
        http: HttpSession,
        logs: LogVerifier,
        chains: RoomChains,
        directory: Directory,
        reader: Reader,
        keystore: Keystore,
        clock: Clock,
    ) -> None:
        self._http = http
        self._logs = logs
        self._chains = chains
        self._directory = directory
        self._reader = reader
        self._keystore = keystore
        self._clock = clock

    # --- rooms ----------------------------------------------------------------------

    async def create_room(
        self,
        title: str,
        *,
        require_verified: bool = False,
        witnesses: Sequence[str] = (),
        witness_quorum: int = 0,
        mediator_vouches: bool = False,
    ) -> Room:
        """(Mediators) open a room with yourself as its only member.

        The policy (`require_verified`, the witness keys and quorum, whether
        members take the mediator's vouches, `mediator_vouches`) is part of the
        signed roster, so the server cannot change it.
        """
        state = self._keystore.state
        me = await self._directory.account(state.account_id)
        roster = Roster(
            room_id=uuid.uuid4().hex,
            version=1,
            prev_hash=None,
            title=title,
            members=[roster_member(me, Side.MEDIATOR)],
            policy=RoomPolicy(
                require_verified=require_verified,
                witnesses=list(witnesses),
                witness_quorum=witness_quorum,
                mediator_vouches=mediator_vouches,
            ),
            signer_device=state.device_id,
            issued_at=self._clock(),
        )
        signed = sign_statement(state.device_key, roster)
        data = await self._http.call(RoomOut, "POST", "/v1/rooms", json={"roster": dump(signed)})
        await self._logged(roster.room_id, _proof_of_change(data, roster.room_id), "roster", signed)
        return await self._room_from(data)

    async def set_policy(
        self,
        room_id: str,
        *,
        require_verified: bool | None = None,
        witnesses: Sequence[str] | None = None,
        witness_quorum: int | None = None,
        mediator_vouches: bool | None = None,
    ) -> Room:
        """(Mediators) change the room's policy: a new roster version, signed here."""
        current, current_signed = await self._chains.current(room_id)
        changes = {
            "require_verified": require_verified,
            "witnesses": None if witnesses is None else list(witnesses),
            "witness_quorum": witness_quorum,
            "mediator_vouches": mediator_vouches,
        }
        try:
            policy = RoomPolicy.model_validate(
                {
                    **current.policy.model_dump(),
                    **{k: v for k, v in changes.items() if v is not None},
                }
            )
        except ValidationError as exc:
            raise ProtocolError(f"invalid room policy: {exc.errors()[0]['msg']}") from exc
        return await self._publish_roster(current, current_signed, current.members, policy)

    async def add_member(self, room_id: str, account_id: str, side: Side) -> Room:
        """(Mediators) add an account on `side`: a new roster version, signed here."""
        room_roster, room_signed = await self._chains.current(room_id)
        if room_roster.member(account_id) is not None:
            raise ProtocolError(f"account {account_id} is already in the room")
        account = await self._directory.account(account_id)
        members = [*room_roster.members, roster_member(account, side)]
        return await self._publish_roster(room_roster, room_signed, members)

    async def remove_member(self, room_id: str, account_id: str) -> Room:
        """(Mediators) remove an account: a new roster version without it."""
        room_roster, room_signed = await self._chains.current(room_id)
        members = [m for m in room_roster.members if m.account_id != account_id]
        if len(members) == len(room_roster.members):
            raise ProtocolError(f"account {account_id} is not in the room")
        return await self._publish_roster(room_roster, room_signed, members)

    async def rekey(self, room_id: str) -> Room:
        """(Mediators) re-key the room: a new roster version listing each member's devices
        as the verified directory shows them now, so revoked devices are out and linked
        ones in; a member with no device left (an account the operator revoked) leaves.
        Nothing later is sealed to a device the new version does not list."""
        current, current_signed = await self._chains.current(room_id)
        members = []
        for member in current.members:
            account = await self._directory.account(member.account_id)
            if account.devices:
                members.append(roster_member(account, member.side))
        unvouched = [m.model_copy(update={"vouched_key_sha256": None}) for m in current.members]
        if members == unvouched:
            raise ProtocolError(f"room {room_id}: every member's devices are current already")
        return await self._publish_roster(current, current_signed, members)

    async def vouch(self, room_id: str) -> Room:
        """(Mediators) sign a new roster version that vouches for every member you have
        verified by safety number since the last one (rooms with `mediator_vouches`)."""
        current, current_signed = await self._chains.current(room_id)
        if not current.policy.mediator_vouches:
            raise ProtocolError(
                f"room {room_id}: its policy does not take vouches; set it with "
                f"`parley room policy {room_id} --mediator-vouches`"
            )
        vouched = with_vouches(self._keystore, current.members, vouch=True)
        if vouched == current.members and current.signer_device == self._keystore.state.device_id:
            raise ProtocolError(
                f"room {room_id}: the roster vouches for every member you verified already"
            )
        return await self._publish_roster(current, current_signed, current.members)

    async def _publish_roster(
        self,
        current: Roster,
        current_signed: SignedStatement,
        members: list[RosterMember],
        policy: RoomPolicy | None = None,
    ) -> Room:
        state = self._keystore.state
        policy = current.policy if policy is None else policy
        roster = Roster(
            room_id=current.room_id,
            version=current.version + 1,
            prev_hash=b64e(current_signed.body_hash()),
            title=current.title,
            # Every version vouches afresh, for whom this signer verified (docs/design.md §3).
            members=with_vouches(self._keystore, members, vouch=policy.mediator_vouches),
            policy=policy,
            signer_device=state.device_id,
            issued_at=self._clock(),
        )
        signed = sign_statement(state.device_key, roster)
        data = await self._http.call(
            RoomOut, "POST", f"/v1/rooms/{current.room_id}/rosters", json={"roster": dump(signed)}
        )
        await self._logged(
            current.room_id, _proof_of_change(data, current.room_id), "roster", signed
        )
        return await self._room_from(data)

    async def room(self, room_id: str) -> Room:
        """A room with its roster verified back to version 1, and its mode, caucuses,
        mutes and status replayed from the signed log (not taken from the server)."""
        await self._reader.replay(room_id)
        data = await self._http.call(RoomOut, "GET", f"/v1/rooms/{room_id}")
        if data.room_id != room_id:
            raise ProtocolError(f"asked for room {room_id}, got room {data.room_id}")
        return await self._room_from(data)

    async def rooms(self) -> list[RoomSummary]:
        """Summaries of the rooms this account is in."""
        return await self._http.call_list(RoomSummary, "GET", "/v1/rooms")

    async def _room_from(self, data: RoomOut) -> Room:
        room_id = data.room_id
        roster, _ = await self._chains.served(room_id, data)
        signer = self._chains.signer(roster)
        chain = self._chains.chain(room_id)
        known = chain.state_known and chain.position >= data.last_seq
        return Room(
            room_id=room_id,
            title=roster.title,
            status=chain.state.status.value if known else data.status.value,
            mode=chain.state.mode.value if known else data.mode.value,
            caucuses=sorted(chain.state.caucuses) if known else list(data.caucuses),
            muted=sorted(chain.state.muted) if known else [],
            state_verified=known,
            require_verified=roster.policy.require_verified,
            mediator_vouches=roster.policy.mediator_vouches,
            witnesses=list(roster.policy.witnesses),
            witness_quorum=roster.policy.witness_quorum,
            roster_version=roster.version,
            last_seq=data.last_seq,
            side=data.side.value,
            members=[
                Member(
                    account_id=m.account_id,
                    name=m.name,
                    side=m.side,
                    device_ids=[d.device_id for d in m.devices],
                    trust=member_trust(self._keystore, roster, signer, m),
                )
                for m in roster.members
            ],
            rekey=[RekeyNotice(n.account_id, n.device_id, n.reason) for n in data.rekey],
        )

    # --- moderation -----------------------------------------------------------------

    async def moderate(
        self,
        room_id: str,
        action: Action,
        *,
        mode: Mode | None = None,
        side: Side | None = None,
        account_id: str | None = None,
    ) -> RoomStateView:
        """(Mediators) sign and submit one act on the room; return the room's state after it.

        The answer's checkpoint is checked like a message receipt; after
        ``close`` it is the room's final checkpoint (see `final_checkpoint`).
        """
        current, _ = await self._chains.current(room_id)
        state = self._keystore.state
        try:
            act = Moderation(
                room_id=room_id,
                moderation_id=new_message_id(),
                action=action,
                mode=mode,
                side=None if side is None else party_side(side),
                account_id=account_id,
                roster_version=current.version,
                signer_device=state.device_id,
                issued_at=self._clock(),
            )
        except ValidationError as exc:
            raise ProtocolError(f"invalid moderation act: {exc.errors()[0]['msg']}") from exc
        signed = sign_statement(state.device_key, act)
        result = await self._http.call(
            ModerationOut,
            "POST",
            f"/v1/rooms/{room_id}/moderation",
            json={"statement": dump(signed)},
        )
        await self._logged(room_id, result, "moderation", signed)
        answer = result.state
        return RoomStateView(
            mode=answer.mode.value,
            status=answer.status.value,
            caucuses=list(answer.caucuses),
            muted=list(answer.muted),
            seq=result.seq,
            checkpoint=result.checkpoint,
        )

    async def _logged(
        self, log_id: str, logged: Logged, kind: str, signed: SignedStatement
    ) -> None:
        """The answer proves the statement this device just signed is in the room's log."""
        await self._logs.check_logged(
            log_id,
            logged,
            kind=kind,
            actor_device=self._keystore.state.device_id,
            payload_hash=signed.body_hash(),
            signature=signed.signature,
        )


def _proof_of_change(data: RoomOut, room_id: str) -> LoggedOut:
    """The log proof a roster change is answered with (the answer must carry one)."""
    if data.room_id != room_id:
        raise ProtocolError(f"a change of room {room_id} was answered for room {data.room_id}")
    if data.logged is None:
        raise ProtocolError(f"room {room_id}: the roster change was answered without its proof")
    return data.logged
