"""What `parley read` adds around each message: the time (with the date when it is not
today, or not the day of the event before), the filters (``--since``, ``--channel``,
``--grep``) and the lines of the mediators' changes to the room."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from client_sdk.cli.render import inline, label, who

if TYPE_CHECKING:
    from rich.text import Text

    from client_sdk.client import Person, RoomChange

ROOM: Final = "room"
"""The channel column of a change to the whole room (a mute, a mode, a roster)."""
MAIN: Final = "main"
"""What ``--channel`` also accepts for the plenary."""
_AGE: Final = re.compile(r"(\d+)([smhd])")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Stamps:
    """Times as `parley read` shows them, in local time: ``09:14:03``, with the date
    before it when the event is not from today or from another day than the event
    shown before it (so a ``--follow`` running past midnight dates the first event of
    the new day)."""

    def __init__(self, today: date | None = None) -> None:
        self._today = today
        self._last: date | None = None

    def __call__(self, ms: int) -> str:
        """The stamp of an event at `ms` (Unix milliseconds)."""
        moment = datetime.fromtimestamp(ms / 1000).astimezone()
        day = moment.date()
        today = self._today or datetime.now().astimezone().date()
        dated = day != today or (self._last is not None and day != self._last)
        self._last = day
        return moment.strftime("%Y-%m-%d %H:%M:%S" if dated else "%H:%M:%S")


def parse_since(value: str, *, now: datetime | None = None) -> int:
    """``--since``: an age (``90m``, ``2h``, ``1d``) or an ISO date or date and time
    (local time unless it names an offset), as Unix milliseconds; ValueError else."""
    now = now or datetime.now().astimezone()
    age = _AGE.fullmatch(value.strip())
    if age is not None:
        moment = now - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"--since {value!r}: give an age (90m, 2h, 1d) or an ISO date or time "
                "(2026-12-01, 2026-12-01T09:30)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.astimezone()  # a naive time is local time
    return int(moment.timestamp() * 1000)


def compile_grep(pattern: str) -> re.Pattern[str]:
    """``--grep``: a regular expression, matched anywhere and ignoring case; ValueError
    if it does not compile."""
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"--grep {pattern!r}: {exc}") from None


def channel_filter(channel: str | None) -> str | None:
    """The channel ``--channel`` names (``main`` is the plenary)."""
    from client_sdk.protocol.mediation import PLENARY

    return PLENARY if channel == MAIN else channel


def _person(person: Person | None) -> str:
    if person is None:
        return "[unknown]"
    return who(person.name, side=person.side or None, account_id=person.account_id)


def change_text(change: RoomChange) -> str:
    """What a change did, in Parley's words with the names made safe (`render`)."""
    action = change.action
    subject = _person(change.subject)
    channel = inline(change.channel or "")
    simple = {
        "set-mode": f"set the mode to {inline(change.mode or '')}",
        "open-caucus": f"opened {channel}",
        "close-caucus": f"closed {channel}",
        "mute": f"muted {subject}",
        "unmute": f"unmuted {subject}",
        "lock": "locked the room",
        "unlock": "unlocked the room",
        "close": "closed the room",
        "grant-auditor": f"made {subject} an auditor",
    }
    if action in simple:
        return simple[action]
    parts = [f"added {_person(p)}" for p in change.added]
    parts += [f"removed {_person(p)}" for p in change.removed]
    if change.policy is not None and action != "created":
        parts.append(f"changed the policy to {_policy(change.policy)}")
    if action == "created":
        parts.insert(0, f"created the room ({_policy(change.policy or {})})")
    return "; ".join(parts) or f"re-keyed the room (roster version {change.roster_version})"


def _policy(policy: dict[str, object]) -> str:
    verified = "verified accounts only" if policy.get("require_verified") else "any member"
    witnesses = policy.get("witnesses") or []
    quorum = policy.get("witness_quorum", 0)
    count = len(witnesses) if isinstance(witnesses, list) else 0
    return f"encrypt to {verified}, {quorum} of {count} witnesses for finality"


def change_channel(change: RoomChange) -> str:
    """The channel column of a change: its caucus, or the whole room."""
    return change.channel or ROOM


def change_line(change: RoomChange, stamp: str) -> Text:
    """``#14 09:15:00 room * [mediator · 3f9c2a] Mona Mediator muted [party b · 77aa01]
    Bob``: a change on a line of its own, marked with ``*`` where a message has its
    sender's ``:``."""
    from rich.text import Text

    by = change.by
    actor = (
        label(side=by.side, account_id=by.account_id) + " " + inline(by.name)
        if by is not None
        else "[unknown]"
    )
    return Text.assemble(
        (f"#{change.seq} {stamp} {inline(change_channel(change))} * ", "dim"),
        (actor, "bold"),
        " ",
        (change_text(change), "italic"),
    )
