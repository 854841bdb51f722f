"""`parley ack`, `parley receipts`, `parley read --json` and `parley settings` against a
real server (docs/design.md §7): a receipt acknowledged from the command line is
listed with who and when, beside the message it names."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Negotiation
from tests.e2e.harness import Cast
from tests.support.cli import run_parley

pytestmark = pytest.mark.slow


async def test_a_receipt_from_the_command_line_is_listed_and_shown_beside_its_message(
    negotiation: Negotiation, cast: Cast
) -> None:
    room_id = negotiation.room_id
    sent = await negotiation.alice.send(room_id, "phase 1 list attached")

    acked = run_parley(["ack", room_id, str(sent.seq), "--json"], env=cast.bob.env).json()
    listed = run_parley(["receipts", room_id, "--json"], env=cast.mediator.env).json()
    only = run_parley(["receipts", room_id, str(sent.seq)], env=cast.alice.env).ok()
    read = run_parley(["read", room_id, "--json"], env=cast.alice.env).json_lines()

    assert acked["seq"] == sent.seq
    assert acked["account_id"] == cast.bob.account_id
    assert acked["name"] == "Bob"
    assert acked["receipt_seq"] > sent.seq
    assert listed == [acked]
    assert f"#{sent.seq} received by [{cast.bob.account_id[:6]}] Bob" in only.stdout
    [message] = [m for m in read if m["seq"] == sent.seq]
    assert message["receipts"] == [acked]


async def test_acknowledging_an_event_that_does_not_exist_is_one_line(
    negotiation: Negotiation, cast: Cast
) -> None:
    result = run_parley(["ack", negotiation.room_id, "999"], env=cast.bob.env)

    assert result.returncode == 1, result.describe()
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no message #999" in result.stderr
    assert run_parley(["receipts", negotiation.room_id, "--json"], env=cast.bob.env).json() == []


def test_the_automatic_receipts_setting_is_kept_in_the_profile(cast: Cast) -> None:
    env = cast.outsider.env  # never in a room: the setting changes nothing elsewhere
    assert run_parley(["settings", "--json"], env=env).json() == {"auto_receipts": False}

    run_parley(["settings", "auto-receipts", "on"], env=env).ok()
    assert run_parley(["settings", "--json"], env=env).json() == {"auto_receipts": True}
    wrong = run_parley(["settings", "auto-receipts", "maybe"], env=env)
    run_parley(["settings", "auto-receipts", "off"], env=env).ok()

    assert wrong.returncode == 2  # a usage error
    assert "on or off" in wrong.stderr
    assert run_parley(["settings", "--json"], env=env).json() == {"auto_receipts": False}
