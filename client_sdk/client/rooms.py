"""Rooms: creating them, their verified roster chains and policy, and moderation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from client_sdk.client.base import (
    _ClientBase,
)
from client_sdk.client.helpers import (
    dump,
    party_side,
    roster_member,
    signed_statement,
)
from client_sdk.client.models import (
    Member,
    Room,
    RoomStateView,
    _RoomChain,
)
from client_sdk.client.verify import (
    verify_roster_step,
)
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import (
    new_message_id,
)
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.models import Role, Side
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


class _Rooms(_ClientBase):
    """Rooms: creating them, their verified roster chains and policy, and moderation."""

    # --- rooms ----------------------------------------------------------------------

    async def create_room(
        self,
        title: str,
        *,
        require_verified: bool = False,
        witnesses: Sequence[str] = (),
        witness_quorum: int = 0,
    ) -> Room:
        """(Mediators) open a room with yourself as its only member.

        The policy (`require_verified`, the witness keys and quorum) is part of
        the signed roster, so the server cannot change it.
        """
        state = self.keystore.state
        me = await self.account(state.account_id)
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
            ),
            signer_device=state.device_id,
            issued_at=self.clock(),
        )
        signed = sign_statement(state.device_key, roster)
        data = await self.http.request("POST", "/v1/rooms", json={"roster": dump(signed)})
        await self._check_logged(
            roster.room_id, data["logged"], "roster", signed.body_hash(), signed.signature
        )
        return await self._room_from(data)

    async def set_policy(
        self,
        room_id: str,
        *,
        require_verified: bool | None = None,
        witnesses: Sequence[str] | None = None,
        witness_quorum: int | None = None,
    ) -> Room:
        """(Mediators) change the room's policy: a new roster version, signed here."""
        current, current_signed = await self._current_roster(room_id)
        changes = {
            "require_verified": require_verified,
            "witnesses": None if witnesses is None else list(witnesses),
            "witness_quorum": witness_quorum,
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
        room_roster, room_signed = await self._current_roster(room_id)
        if room_roster.member(account_id) is not None:
            raise ProtocolError(f"account {account_id} is already in the room")
        account = await self.account(account_id)
        members = [*room_roster.members, roster_member(account, side)]
        return await self._publish_roster(room_roster, room_signed, members)

    async def remove_member(self, room_id: str, account_id: str) -> Room:
        """(Mediators) remove an account: a new roster version without it."""
        room_roster, room_signed = await self._current_roster(room_id)
        members = [m for m in room_roster.members if m.account_id != account_id]
        if len(members) == len(room_roster.members):
            raise ProtocolError(f"account {account_id} is not in the room")
        return await self._publish_roster(room_roster, room_signed, members)

    async def _publish_roster(
        self,
        current: Roster,
        current_signed: SignedStatement,
        members: list[RosterMember],
        policy: RoomPolicy | None = None,
    ) -> Room:
        state = self.keystore.state
        roster = Roster(
            room_id=current.room_id,
            version=current.version + 1,
            prev_hash=b64e(current_signed.body_hash()),
            title=current.title,
            members=members,
            policy=current.policy if policy is None else policy,
            signer_device=state.device_id,
            issued_at=self.clock(),
        )
        signed = sign_statement(state.device_key, roster)
        data = await self.http.request(
            "POST", f"/v1/rooms/{current.room_id}/rosters", json={"roster": dump(signed)}
        )
        await self._check_logged(
            current.room_id, data["logged"], "roster", signed.body_hash(), signed.signature
        )
        return await self._room_from(data)

    async def room(self, room_id: str) -> Room:
        """A room with its roster verified back to version 1, and its mode, caucuses,
        mutes and status replayed from the signed log (not taken from the server)."""
        await self._replay(room_id)
        return await self._room_from(await self.http.request("GET", f"/v1/rooms/{room_id}"))

    async def rooms(self) -> list[dict[str, Any]]:
        """Summaries of the rooms this account is in."""
        result: list[dict[str, Any]] = await self.http.request("GET", "/v1/rooms")
        return result

    async def _room_from(self, data: dict[str, Any]) -> Room:
        room_id = str(data["room_id"])
        roster, _ = await self._served_roster(room_id, data)
        chain = self._chains[room_id]
        known = chain.state_known and chain.position >= int(data["last_seq"])
        return Room(
            room_id=room_id,
            title=roster.title,
            status=chain.state.status.value if known else str(data["status"]),
            mode=chain.state.mode.value if known else str(data["mode"]),
            caucuses=sorted(chain.state.caucuses) if known else list(data.get("caucuses", [])),
            muted=sorted(chain.state.muted) if known else [],
            state_verified=known,
            require_verified=roster.policy.require_verified,
            witnesses=list(roster.policy.witnesses),
            witness_quorum=roster.policy.witness_quorum,
            roster_version=roster.version,
            last_seq=int(data["last_seq"]),
            side=str(data["side"]),
            members=[
                Member(
                    account_id=m.account_id,
                    name=m.name,
                    side=m.side,
                    device_ids=[d.device_id for d in m.devices],
                    verified=self.is_verified(m.account_id),
                )
                for m in roster.members
            ],
        )

    async def _current_roster(self, room_id: str) -> tuple[Roster, SignedStatement]:
        data = await self.http.request("GET", f"/v1/rooms/{room_id}")
        return await self._served_roster(room_id, data)

    async def _served_roster(
        self, room_id: str, data: dict[str, Any]
    ) -> tuple[Roster, SignedStatement]:
        """The roster a room answer calls current, if the verified chain agrees.

        Never older than a version already verified: a server winding the room
        back could make us encrypt to a member since removed.
        """
        version = int(data["roster_version"])
        head = self.keystore.roster_head(room_id)
        newest = max(
            self._chains[room_id].newest if room_id in self._chains else 0,
            0 if head is None else head.version,
        )
        if version < newest:
            raise VerificationError(
                f"room {room_id}: the server shows roster version {version}, older than "
                f"version {newest} already verified"
            )
        roster, signed = await self._roster(room_id, version)
        if signed_statement(data["roster"]).body != signed.body:
            raise VerificationError(f"room {room_id}: the server's roster differs from the chain")
        return roster, signed

    async def _roster(self, room_id: str, version: int) -> tuple[Roster, SignedStatement]:
        """Roster `version` of a room, verifying every version up to it once."""
        chain = self._chains.setdefault(room_id, _RoomChain())
        for v in range(chain.newest + 1, version + 1):
            data = await self.http.request("GET", f"/v1/rooms/{room_id}/rosters/{v}")
            await self._accept_roster(room_id, signed_statement(data["roster"]))
        if version not in chain.rosters:
            raise VerificationError(f"room {room_id}: no verified roster version {version}")
        return chain.rosters[version]

    async def _accept_roster(self, room_id: str, signed: SignedStatement) -> Roster:
        chain = self._chains.setdefault(room_id, _RoomChain())
        version = signed.body.get("version")
        if not isinstance(version, int) or version < 1:
            raise VerificationError(f"room {room_id}: roster without a valid version")
        if version in chain.rosters:
            if chain.rosters[version][1].body != signed.body:
                raise VerificationError(
                    f"room {room_id}: two different rosters for version {version}"
                )
            return chain.rosters[version][0]
        if version > chain.newest + 1:
            await self._roster(room_id, version - 1)
        previous = chain.rosters.get(version - 1)
        roster = verify_roster_step(signed, room_id=room_id, previous=previous)
        signer = (previous[0] if previous else roster).device_owner(roster.signer_device)
        assert signer is not None
        directory = await self.account(signer.account_id)
        if directory.role is not Role.MEDIATOR or b64e(directory.account_key) != signer.account_key:
            raise VerificationError(
                f"room {room_id}: roster version {roster.version} signer is not a mediator "
                "in the directory"
            )
        if roster.signer_device not in directory.devices:
            raise VerificationError(
                f"room {room_id}: roster signer device is not certified by its account"
            )
        # The newest version verified is kept in the keystore, so that a later
        # session (or another process) refuses a different roster for it too.
        self.keystore.set_roster_head(room_id, roster.version, signed.body_hash())
        chain.rosters[roster.version] = (roster, signed)
        return roster

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
        current, _ = await self._current_roster(room_id)
        state = self.keystore.state
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
                issued_at=self.clock(),
            )
        except ValidationError as exc:
            raise ProtocolError(f"invalid moderation act: {exc.errors()[0]['msg']}") from exc
        signed = sign_statement(state.device_key, act)
        result = await self.http.request(
            "POST", f"/v1/rooms/{room_id}/moderation", json={"statement": dump(signed)}
        )
        await self._check_logged(
            room_id, result, "moderation", signed.body_hash(), signed.signature
        )
        answer = result["state"]
        return RoomStateView(
            mode=str(answer["mode"]),
            status=str(answer["status"]),
            caucuses=list(answer["caucuses"]),
            muted=list(answer["muted"]),
            seq=int(result["seq"]),
            checkpoint=str(result["checkpoint"]),
        )
