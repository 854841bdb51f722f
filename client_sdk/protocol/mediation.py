"""Channels, modes and moderation (docs/design.md §4): the rules, as pure code that the
server enforces and every client re-checks from the signed log.

A room has the ``plenary`` channel (every member) and, while a mediator keeps
them open, the caucus channels ``caucus-a`` and ``caucus-b`` (the mediators
plus that side). In ``open`` mode parties post in plenary and in their open
caucus; in ``shuttle`` mode only mediators post in plenary. Observers read
plenary and post nothing. Moderation acts are statements signed by a
mediator's device (`statements.Moderation`); `RoomState.apply` is the one
transition function.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from client_sdk.protocol.errors import NotPermitted
from client_sdk.protocol.models import Side
from client_sdk.protocol.statements import Action, Mode, Moderation, Roster

PLENARY = "plenary"
CAUCUS_PREFIX = "caucus-"
PARTY_SIDES = (Side.A, Side.B)


class Status(enum.StrEnum):
    """Whether a room takes new events."""

    OPEN = "open"
    LOCKED = "locked"
    CLOSED = "closed"


def caucus(side: Side | str) -> str:
    """The caucus channel of a party side."""
    return f"{CAUCUS_PREFIX}{Side(side).value}"


def channel_sides(channel: str) -> set[Side] | None:
    """The sides whose members read `channel`, or None if there is no such channel."""
    if channel == PLENARY:
        return {Side.MEDIATOR, Side.A, Side.B, Side.OBSERVER}
    for side in PARTY_SIDES:
        if channel == caucus(side):
            return {Side.MEDIATOR, side}
    return None


def channel_devices(roster: Roster, channel: str) -> list[str]:
    """Sorted device ids a message on `channel` must be encrypted to, exactly."""
    sides = channel_sides(channel)
    if sides is None:
        raise ValueError(f"unknown channel {channel!r}")
    return roster.device_ids(sides)


class Refusal(enum.StrEnum):
    """Why the room's state refuses an act (the server maps each to a status)."""

    CLOSED = "closed"
    LOCKED = "locked"
    NOT_MEMBER = "not-member"
    UNKNOWN_CHANNEL = "unknown-channel"
    CHANNEL_CLOSED = "channel-closed"
    WRONG_SIDE = "wrong-side"
    OBSERVER = "observer"
    MUTED = "muted"
    SHUTTLE = "shuttle"
    INVALID = "invalid"
    UNKNOWN = "unknown"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class RoomState:
    """Mode, open caucuses, mutes and status: everything moderation changes."""

    mode: Mode = Mode.OPEN
    status: Status = Status.OPEN
    caucuses: frozenset[str] = field(default_factory=frozenset)
    muted: frozenset[str] = field(default_factory=frozenset)

    def channels(self) -> list[str]:
        """The channels open now."""
        return [PLENARY, *sorted(self.caucuses)]

    def apply(self, act: Moderation, roster: Roster) -> RoomState:
        """The state after `act`; `NotPermitted` if it makes no sense now."""
        if self.status is Status.CLOSED:
            raise NotPermitted(Refusal.CLOSED, "the room is closed")
        action = act.action
        if action is Action.SET_MODE:
            assert act.mode is not None
            return replace(self, mode=act.mode)
        if action in (Action.OPEN_CAUCUS, Action.CLOSE_CAUCUS):
            assert act.side is not None
            name = caucus(act.side)
            if action is Action.OPEN_CAUCUS:
                if name in self.caucuses:
                    raise NotPermitted(Refusal.INVALID, f"{name} is already open")
                return replace(self, caucuses=self.caucuses | {name})
            if name not in self.caucuses:
                raise NotPermitted(Refusal.INVALID, f"{name} is not open")
            return replace(self, caucuses=self.caucuses - {name})
        if action in (Action.MUTE, Action.UNMUTE):
            assert act.account_id is not None
            member = roster.member(act.account_id)
            if member is None:
                raise NotPermitted(Refusal.INVALID, f"account {act.account_id} is not in the room")
            if action is Action.MUTE:
                if member.side is Side.MEDIATOR:
                    raise NotPermitted(Refusal.INVALID, "a mediator cannot be muted")
                return replace(self, muted=self.muted | {act.account_id})
            return replace(self, muted=self.muted - {act.account_id})
        if action is Action.LOCK:
            return replace(self, status=Status.LOCKED)
        if action is Action.UNLOCK:
            if self.status is not Status.LOCKED:
                raise NotPermitted(Refusal.INVALID, "the room is not locked")
            return replace(self, status=Status.OPEN)
        if action is Action.CLOSE:
            return replace(self, status=Status.CLOSED)
        return self  # GRANT_AUDITOR changes who reads the log, not the room's state

    def check_post(self, roster: Roster, account_id: str, channel: str) -> None:
        """Raise `NotPermitted` unless `account_id` may post on `channel` now."""
        if self.status is Status.CLOSED:
            raise NotPermitted(Refusal.CLOSED, "the room is closed")
        if self.status is Status.LOCKED:
            raise NotPermitted(Refusal.LOCKED, "the room is locked (read-only)")
        member = roster.member(account_id)
        if member is None:
            raise NotPermitted(Refusal.NOT_MEMBER, "not a member of the room")
        sides = channel_sides(channel)
        if sides is None:
            raise NotPermitted(Refusal.UNKNOWN_CHANNEL, f"unknown channel {channel!r}")
        if channel != PLENARY and channel not in self.caucuses:
            raise NotPermitted(Refusal.CHANNEL_CLOSED, f"{channel} is not open")
        if member.side not in sides:
            raise NotPermitted(
                Refusal.WRONG_SIDE, f"side {member.side.value} does not take part in {channel}"
            )
        if member.side is Side.OBSERVER:
            raise NotPermitted(Refusal.OBSERVER, "observers read and do not post")
        if account_id in self.muted:
            raise NotPermitted(Refusal.MUTED, "you are muted in this room")
        if channel == PLENARY and self.mode is Mode.SHUTTLE and member.side is not Side.MEDIATOR:
            raise NotPermitted(Refusal.SHUTTLE, "in shuttle mode only mediators post in plenary")
