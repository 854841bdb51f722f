"""`parley offer ...` against a real server (docs/design.md §7): an open round committed
and revealed from the command line shows both offers; a side that refuses to reveal
is opened from escrow after the deadline; bad input is one line."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.conftest import Negotiation
from tests.e2e.harness import Cast
from tests.support.cli import run_parallel, run_parley

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # a dozen processes on a busy machine

QUESTION = "How many detainees are released in phase 1?"


async def test_an_open_round_is_committed_revealed_and_shown_from_the_command_line(
    negotiation: Negotiation, cast: Cast
) -> None:
    room_id = negotiation.room_id
    round_id = (
        run_parley(["offer", "open", room_id, "--question", QUESTION], env=cast.mediator.env)
        .ok()
        .stdout.strip()
    )
    alice = cast.alice.env
    committed = run_parallel(
        [
            (["offer", "commit", room_id, round_id, "120", "--note", "all at once"], alice),
            (["offer", "commit", room_id, round_id, "80", "--json"], cast.bob.env),
        ]
    )
    revealed = run_parallel(
        [
            (["offer", "reveal", room_id, round_id, "--json"], cast.alice.env),
            (["offer", "reveal", room_id, round_id, "--json"], cast.bob.env),
        ]
    )
    shown = run_parley(["offer", "show", room_id, round_id, "--json"], env=cast.mediator.env)
    text = run_parley(["offer", "show", room_id], env=cast.bob.env).ok().stdout
    read = run_parley(["read", room_id], env=cast.alice.env).ok().stdout

    assert "committed side a's offer" in committed[0].ok().stdout
    assert committed[1].json()["side"] == "b"
    assert {r.json()["value"] for r in revealed} == {"120", "80"}
    found = shown.json()
    assert found["round_id"] == round_id
    assert found["question"] == QUESTION
    assert {o["side"]: (o["value"], o["opened_from"]) for o in found["offers"]} == {
        "a": ("120", "reveal"),
        "b": ("80", "reveal"),
    }
    assert "side a (Alice): 120 (all at once) [revealed, checked]" in text
    assert f"side b revealed in round {round_id}: 80" in read


async def test_a_blind_round_ends_with_the_mediators_overlap_announcement(
    negotiation: Negotiation, cast: Cast
) -> None:
    room_id = negotiation.room_id
    opened = run_parley(
        [
            *("offer", "open", room_id, "--question", "Detainees released in phase 1?"),
            *("--blind", "--rule", "midpoint", "--deadline", "1h", "--json"),
        ],
        env=cast.mediator.env,
    ).json()
    round_id = opened["round_id"]
    for step in (["commit", "300"], ["reveal"]):
        run_parallel(
            [
                (["offer", step[0], room_id, round_id, *step[1:]], cast.alice.env),
                (["offer", step[0], room_id, round_id, *step[1:]], cast.bob.env),
            ]
        )
    settled = run_parley(["offer", "settle", room_id, round_id, "--json"], env=cast.mediator.env)
    mona = run_parley(["offer", "show", room_id, round_id, "--json"], env=cast.mediator.env)
    alice = run_parley(["offer", "show", room_id, round_id, "--json"], env=cast.alice.env)
    read = run_parley(["read", room_id], env=cast.bob.env).ok().stdout

    assert opened["deadline"] is not None
    assert (settled.json()["overlap"], settled.json()["midpoint"]) == (True, "300")
    assert mona.json()["settlement"]["checked"] is True
    assert {o["side"]: o["value"] for o in mona.json()["offers"]} == {"a": "300", "b": "300"}
    seen = alice.json()
    assert {o["side"]: o["value"] for o in seen["offers"]} == {"a": "300", "b": None}
    assert seen["settlement"]["overlap"] is True
    assert seen["settlement"]["checked"] is False  # Alice holds only her own opening
    assert seen["status"] == "settled"
    assert f"settled offer round {round_id}: the offers overlap, midpoint 300" in read


async def test_a_side_that_does_not_reveal_is_opened_from_escrow_after_the_deadline(
    negotiation: Negotiation, cast: Cast
) -> None:
    room_id = negotiation.room_id
    # Long enough for the three acts before it on a loaded machine (3 s was not).
    deadline = time.time_ns() // 1_000_000 + 20_000
    opened = await negotiation.mediator.offers.open_round(room_id, QUESTION, deadline=deadline)
    round_id = opened.round_id
    await negotiation.alice.offers.commit(room_id, round_id, "120")
    await negotiation.bob.offers.commit(room_id, round_id, "95", "final")
    await negotiation.alice.offers.reveal(room_id, round_id)

    # The behaviour under test is the server's clock passing the deadline.
    await asyncio.sleep(max(0.0, (deadline - time.time_ns() // 1_000_000) / 1000 + 0.2))
    escrow = run_parley(
        ["offer", "open-escrow", room_id, round_id, "b", "--json"], env=cast.mediator.env
    )
    shown = run_parley(["offer", "show", room_id, round_id, "--json"], env=cast.alice.env).json()

    assert escrow.json()["value"] == "95"
    bob = next(o for o in shown["offers"] if o["side"] == "b")
    assert (bob["value"], bob["note"], bob["opened_from"]) == ("95", "final", "escrow")
    assert bob["revealed_seq"] is None
    assert shown["status"] == "closed"


async def test_bad_offer_input_is_one_line(negotiation: Negotiation, cast: Cast) -> None:
    room_id = negotiation.room_id
    unknown = run_parley(["offer", "commit", room_id, "no-such-round", "5"], env=cast.alice.env)
    as_json = run_parley(
        ["offer", "commit", room_id, "no-such-round", "5", "--json"], env=cast.alice.env
    )
    deadline = run_parley(
        ["offer", "open", room_id, "--question", "q", "--deadline", "soonish"],
        env=cast.mediator.env,
    )
    party = run_parley(["offer", "open", room_id, "--question", "q"], env=cast.alice.env)

    assert unknown.returncode == 1, unknown.describe()
    assert unknown.stderr.count("\n") == 1
    assert "no offer round" in unknown.stderr
    assert as_json.returncode == 1
    assert as_json.stdout == ""
    assert "no offer round" in as_json.json_error()["message"]
    assert deadline.returncode == 2
    assert "--deadline" in deadline.stderr
    assert party.returncode == 1
    assert "only a mediator" in party.stderr
    listed = run_parley(["offer", "show", room_id, "--json"], env=cast.bob.env).json()
    assert listed == []


async def test_a_round_without_deadline_is_closed_by_the_mediator_only(
    negotiation: Negotiation, cast: Cast
) -> None:
    room_id = negotiation.room_id
    round_id = (await negotiation.mediator.offers.open_round(room_id, QUESTION)).round_id

    refused = run_parley(["offer", "close", room_id, round_id], env=cast.alice.env)
    closed = run_parley(["offer", "close", room_id, round_id, "--json"], env=cast.mediator.env)
    read = run_parley(["read", room_id, "--json"], env=cast.bob.env).json_lines()

    assert refused.returncode == 1, refused.describe()
    assert "only a mediator closes a round without a deadline" in refused.stderr
    assert closed.json()["act"] == "round-close"
    offers = [line["offer"] for line in read if line.get("offer")]
    assert [o["act"] for o in offers] == ["round-open", "round-close"]
    assert {o["round_id"] for o in offers} == {round_id}
