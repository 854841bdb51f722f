"""What a moderation or roster event did, in the words `parley read` shows (`RoomChange`).

Built only after the reader verified the event (`Reader`), from the signed
statement and the signed rosters: the server chooses none of it.
"""

from __future__ import annotations

from client_sdk.client.chains import RoomChains
from client_sdk.client.models import Person, RoomChange
from client_sdk.protocol.mediation import caucus
from client_sdk.protocol.statements import Moderation, Roster, RosterMember, SignedStatement
from client_sdk.protocol.wire.events import EventOut


def _person(member: RosterMember | None) -> Person | None:
    if member is None:
        return None
    return Person(account_id=member.account_id, name=member.name, side=member.side.value)


async def moderation_change(
    chains: RoomChains, room_id: str, event: EventOut, signed: SignedStatement
) -> RoomChange:
    """The change a verified moderation event made."""
    act = Moderation.model_validate(signed.body)
    roster, _ = await chains.roster(room_id, act.roster_version)
    subject = None
    if act.account_id is not None:
        subject = _person(roster.member(act.account_id)) or Person(act.account_id, "", "")
    return RoomChange(
        room_id=room_id,
        seq=event.seq,
        leaf_index=event.leaf_index,
        server_time=event.created_at,
        action=act.action.value,
        by=_person(roster.device_owner(act.signer_device)),
        roster_version=act.roster_version,
        mode=None if act.mode is None else act.mode.value,
        channel=None if act.side is None else caucus(act.side),
        subject=subject,
    )


async def roster_change(
    chains: RoomChains, room_id: str, event: EventOut, roster: Roster
) -> RoomChange:
    """The change a verified roster event made: members added or removed, the policy."""
    before = None
    if roster.version > 1:
        before, _ = await chains.roster(room_id, roster.version - 1)
    signer = roster.device_owner(roster.signer_device)
    if signer is None and before is not None:
        signer = before.device_owner(roster.signer_device)
    old = {m.account_id: m for m in before.members} if before is not None else {}
    new = {m.account_id: m for m in roster.members}
    policy_changed = before is None or before.policy != roster.policy
    return RoomChange(
        room_id=room_id,
        seq=event.seq,
        leaf_index=event.leaf_index,
        server_time=event.created_at,
        action="created" if before is None else "roster",
        by=_person(signer),
        roster_version=roster.version,
        added=tuple(p for a, m in new.items() if a not in old if (p := _person(m))),
        removed=tuple(p for a, m in old.items() if a not in new if (p := _person(m))),
        policy=roster.policy.model_dump(mode="json") if policy_changed else None,
    )
