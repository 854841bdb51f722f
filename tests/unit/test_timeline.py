"""`parley read`'s timeline: dates shown when they are not today (or change under
--follow), the --since and --grep filters, and a mediator's change on a line of its own."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import pytest
from rich.console import Console

from client_sdk.cli import render, timeline
from client_sdk.client import Person, RoomChange

MONA = Person(account_id="1a2b3c4d", name="Mona", side="mediator")
BOB = Person(account_id="b0b0b0b0", name="Bob\x1b[2J", side="b")


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def local(*parts: int) -> datetime:
    return datetime(*parts).astimezone()  # type: ignore[arg-type]


def change(action: str = "mute", **fields: object) -> RoomChange:
    defaults: dict[str, object] = {
        "room_id": "room",
        "seq": 14,
        "leaf_index": 13,
        "server_time": ms(local(2026, 12, 1, 9, 15)),
        "action": action,
        "by": MONA,
        "roster_version": 2,
    }
    return RoomChange(**{**defaults, **fields})  # type: ignore[arg-type]


def test_an_event_of_today_shows_the_time_alone() -> None:
    stamps = timeline.Stamps(today=date(2026, 12, 1))

    assert stamps(ms(local(2026, 12, 1, 9, 14, 3))) == "09:14:03"


def test_an_event_of_another_day_shows_its_date() -> None:
    stamps = timeline.Stamps(today=date(2026, 12, 2))

    assert stamps(ms(local(2026, 12, 1, 23, 59, 59))) == "2026-12-01 23:59:59"


def test_following_past_midnight_dates_the_first_event_of_the_new_day_only() -> None:
    stamps = timeline.Stamps(today=date(2026, 12, 2))  # the follow started on the 1st

    shown = [
        stamps(ms(local(2026, 12, 1, 23, 58))),
        stamps(ms(local(2026, 12, 2, 0, 1))),
        stamps(ms(local(2026, 12, 2, 0, 2))),
    ]

    assert shown == ["2026-12-01 23:58:00", "2026-12-02 00:01:00", "00:02:00"]


@pytest.mark.parametrize(
    ("age", "delta"),
    [
        ("90m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("30s", timedelta(seconds=30)),
    ],
)
def test_since_takes_an_age(age: str, delta: timedelta) -> None:
    now = local(2026, 12, 1, 12, 0)

    assert timeline.parse_since(age, now=now) == ms(now - delta)


def test_since_takes_an_iso_date_or_time_in_local_time_or_with_an_offset() -> None:
    assert timeline.parse_since("2026-12-01") == ms(local(2026, 12, 1))
    assert timeline.parse_since("2026-12-01T09:30") == ms(local(2026, 12, 1, 9, 30))
    assert timeline.parse_since("2026-12-01T09:30+00:00") == 1_796_117_400_000


@pytest.mark.parametrize("value", ["yesterday", "2h ago", "-1d", "12/01/2026"])
def test_since_refuses_what_it_cannot_read_and_says_what_it_takes(value: str) -> None:
    with pytest.raises(ValueError, match="give an age"):
        timeline.parse_since(value)


def test_grep_ignores_case_and_takes_a_regular_expression() -> None:
    pattern = timeline.compile_grep("detainee|PRISONER")

    assert pattern.search("We release 20 Detainees")
    assert pattern.search("prisoners")
    assert not pattern.search("hostages")
    with pytest.raises(ValueError, match="--grep"):
        timeline.compile_grep("(unclosed")


def test_main_is_the_plenary() -> None:
    assert timeline.channel_filter("main") == "plenary"
    assert timeline.channel_filter("caucus-a") == "caucus-a"
    assert timeline.channel_filter(None) is None


@pytest.mark.parametrize(
    ("made", "text", "channel"),
    [
        (change("set-mode", mode="shuttle"), "set the mode to shuttle", "room"),
        (change("open-caucus", channel="caucus-a"), "opened caucus-a", "caucus-a"),
        (change("close-caucus", channel="caucus-b"), "closed caucus-b", "caucus-b"),
        (change("mute", subject=BOB), "muted [party b · b0b0b0] Bob\\x1b[2J", "room"),
        (change("unmute", subject=BOB), "unmuted [party b · b0b0b0] Bob\\x1b[2J", "room"),
        (change("close"), "closed the room", "room"),
        (change("roster", removed=(BOB,)), "removed [party b · b0b0b0] Bob\\x1b[2J", "room"),
        (
            change(
                "roster", policy={"require_verified": True, "witnesses": ["w"], "witness_quorum": 1}
            ),
            "changed the policy to encrypt to verified accounts only, "
            "1 of 1 witnesses for finality",
            "room",
        ),
        (change("roster"), "re-keyed the room (roster version 2)", "room"),
    ],
)
def test_each_change_says_what_the_mediator_did(made: RoomChange, text: str, channel: str) -> None:
    assert timeline.change_text(made) == text
    assert timeline.change_channel(made) == channel


def test_a_change_is_a_line_of_its_own_marked_with_a_star_not_a_colon() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None, force_terminal=False)

    render.emit(console, timeline.change_line(change("mute", subject=BOB), "09:15:00"), "")

    assert buffer.getvalue() == (
        "#14 09:15:00 room * [mediator · 1a2b3c] Mona muted [party b · b0b0b0] Bob\\x1b[2J\n"
    )
