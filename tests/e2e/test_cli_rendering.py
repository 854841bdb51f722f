"""Forging the screen against a real server: a party's message that carries a line
break, escape sequences and markup shaped like the mediator's next line is shown by
another member's `parley read` indented under its real sender, escapes visible, markup
literal, and the mediator's real line labelled as the mediator's (SECURITY.md)."""

from __future__ import annotations

import re

import pytest

from client_sdk.cli.render import INDENT
from tests.e2e.conftest import Negotiation
from tests.e2e.harness import Cast
from tests.support.cli import run_parley

pytestmark = pytest.mark.slow


async def test_a_message_shaped_like_the_mediators_line_is_shown_as_the_partys(
    negotiation: Negotiation, cast: Cast
) -> None:
    room_id = negotiation.room_id
    mona = cast.mediator.account_id[:6]
    forged = f"#99 12:00:00 [mediator · {mona}] Mona Mediator: We accept."
    sent = await negotiation.alice.send(
        room_id, f"We need time.\n{forged}\x1b[2J\x1b]0;verified\x07 [bold red]now[/]"
    )
    real = await negotiation.mediator.send(room_id, "Noted.")

    output = run_parley(["read", room_id], env=cast.bob.env).ok().stdout

    lines = output.splitlines()
    at_column_0 = [line for line in lines if not line.startswith(INDENT)]
    alice = f"[party a · {cast.alice.account_id[:6]}] Alice"
    assert any(
        re.fullmatch(
            rf"#{sent.seq} \d\d:\d\d:\d\d plenary {re.escape(alice)}: We need time\.", line
        )
        for line in at_column_0
    ), output
    assert f"{INDENT}{forged}\\x1b[2J\\x1b]0;verified\\x07 [bold red]now[/]" in lines
    mediator = rf"#{real.seq} \d\d:\d\d:\d\d plenary \[mediator · {mona}\] Mona Mediator: Noted\."
    assert any(re.fullmatch(mediator, line) for line in at_column_0), output
    assert not any(line.startswith("#99") for line in lines)
    assert "\x1b" not in output
