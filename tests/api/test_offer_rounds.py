"""Sealed-offer rounds (docs/design.md §7) through the SDK and the API: open and blind
rounds revealed and settled, openings kept in the profile between processes, the
deadline judged by the server's (manual) clock, escrow opened for a side that does not
reveal, and every bad act refused by the server with nothing written."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.audit import export_log, verify_bundle, verify_log
from client_sdk.client import ParleyClient
from client_sdk.client.offer_store import STORE_FILENAME
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import new_message_id
from client_sdk.protocol.errors import ConflictError, NotFoundError, ProtocolError
from client_sdk.protocol.instruments.acts import sign_act
from client_sdk.protocol.instruments.base import Act
from client_sdk.protocol.instruments.offers import ESCROW_CIPHERTEXT_LEN
from client_sdk.protocol.instruments.rounds import (
    EscrowOpenAct,
    OfferCommitAct,
    OfferSettleAct,
    RoundCloseAct,
)
from server.app import create_app
from server.config import Settings
from tests.api.factories import ManualClock, assert_error, nothing_written
from tests.conftest import PASSPHRASE, OpenProfile
from tests.support.talks import Talks, open_talks, talks_fixtures, talks_scene

QUESTION = "How many detainees are released in phase 1?"


SCENE = talks_scene("offer-talks")
seed, talks_room = talks_fixtures(SCENE)


@pytest.fixture
def clock() -> ManualClock:
    """The server's clock: it moves only when a test moves it."""
    return ManualClock()


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    """The application on the manual clock."""
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def talks(talks_room: str, open_profile: OpenProfile, tmp_path: Path) -> Talks:
    """The talks, built once per module and backend and copied for each test."""
    return open_talks(SCENE, talks_room, open_profile, tmp_path)


def _by_side(found: Any) -> dict[str, Any]:
    return {offer.side: offer for offer in found.offers}


async def test_an_open_round_shows_both_offers_checked_against_their_commitments(
    talks: Talks,
) -> None:
    opened = await talks.mona.offers.open_round(talks.room_id, QUESTION)
    round_id = opened.round_id
    await talks.alice.offers.commit(talks.room_id, round_id, "120", "all civilians first")
    with pytest.raises(ConflictError, match="not every side has committed"):
        await talks.alice.offers.reveal(talks.room_id, round_id)
    await talks.bob.offers.commit(talks.room_id, round_id, "80")

    await talks.alice.offers.reveal(talks.room_id, round_id)
    await talks.bob.offers.reveal(talks.room_id, round_id)

    for client in (talks.mona, talks.alice, talks.bob):
        [shown] = await client.offers.rounds(talks.room_id)
        offers = _by_side(shown)
        assert shown.question == QUESTION
        assert shown.opened_by == "Mona"
        assert (offers["a"].value, offers["a"].note) == ("120", "all civilians first")
        assert offers["b"].value == "80"
        assert {o.opened_from for o in shown.offers} == {"reveal"}
        assert all(o.refused is None for o in shown.offers)
        assert shown.status == "open"
    # Sealed parts are acknowledged like every instrument's.
    acknowledged = {(a.seq, a.name) for a in await talks.mona.receipts(talks.room_id)}
    assert (opened.seq, "Alice") in acknowledged


async def test_a_blind_round_shows_offers_to_the_mediator_only_and_is_settled(
    talks: Talks,
) -> None:
    round_id = (
        await talks.mona.offers.open_round(talks.room_id, QUESTION, blind=True, rule="midpoint")
    ).round_id
    await talks.alice.offers.commit(talks.room_id, round_id, "120")
    await talks.bob.offers.commit(talks.room_id, round_id, "101")
    await talks.alice.offers.reveal(talks.room_id, round_id)
    await talks.bob.offers.reveal(talks.room_id, round_id)

    settled = await talks.mona.offers.settle(talks.room_id, round_id)

    assert (settled.overlap, settled.midpoint) == (True, "110.5")
    [mona_view] = await talks.mona.offers.rounds(talks.room_id, round_id)
    [bob_view] = await talks.bob.offers.rounds(talks.room_id, round_id)
    assert {o.side: o.value for o in mona_view.offers} == {"a": "120", "b": "101"}
    assert mona_view.settlement is not None
    assert mona_view.settlement.checked
    assert {o.side: o.value for o in bob_view.offers} == {"a": None, "b": "101"}
    assert bob_view.settlement is not None
    assert (bob_view.settlement.overlap, bob_view.settlement.midpoint) == (True, "110.5")
    assert not bob_view.settlement.checked  # Bob does not hold Alice's opening
    assert bob_view.status == "settled"
    with pytest.raises(ConflictError, match="already settled"):
        await talks.mona.offers.settle(talks.room_id, round_id)


async def test_an_offer_is_kept_sealed_in_the_profile_until_revealed_from_another_process(
    talks: Talks, open_profile: OpenProfile
) -> None:
    round_id = (await talks.mona.offers.open_round(talks.room_id, QUESTION)).round_id
    await talks.alice.offers.commit(talks.room_id, round_id, "987654321", "keep me quiet")
    await talks.bob.offers.commit(talks.room_id, round_id, "5")

    stored = (talks.alice.keystore.home / STORE_FILENAME).read_bytes()
    assert b"987654321" not in stored
    assert b"keep me quiet" not in stored
    restarted = open_profile(talks.alice.keystore.home)
    [before] = await restarted.offers.rounds(talks.room_id)
    alice_before = _by_side(before)["a"]
    revealed = await restarted.offers.reveal(talks.room_id, round_id)

    assert (alice_before.value, alice_before.opened_from) == ("987654321", "own")
    assert revealed.value == "987654321"
    [bob_view] = await talks.bob.offers.rounds(talks.room_id)
    assert _by_side(bob_view)["a"].value == "987654321"
    assert _by_side(bob_view)["b"].opened_from == "own"


def _client_at(app: FastAPI, client: ParleyClient, clock: ManualClock) -> ParleyClient:
    """The same profile again, with the server's clock as its own."""
    return ParleyClient(
        Keystore.open(client.keystore.home, PASSPHRASE),
        transport=httpx.ASGITransport(app=app),
        clock=clock,
    )


async def test_after_the_deadline_the_round_closes_and_a_silent_side_is_opened_from_escrow(
    talks: Talks, app: FastAPI, clock: ManualClock
) -> None:
    room_id = talks.room_id
    deadline = clock() + 60_000
    round_id = (await talks.mona.offers.open_round(room_id, QUESTION, deadline=deadline)).round_id
    await talks.alice.offers.commit(room_id, round_id, "120")
    await talks.bob.offers.commit(room_id, round_id, "90", "and not one more")
    await talks.alice.offers.reveal(room_id, round_id)
    with pytest.raises(ConflictError, match="deadline has not passed"):
        await talks.bob.offers.close(room_id, round_id)
    with pytest.raises(ConflictError, match="deadline has not passed"):
        await talks.mona.offers.open_escrow(room_id, round_id, "b")  # it closes first

    clock.advance(seconds=61)
    mona = _client_at(app, talks.mona, clock)
    try:
        opened = await mona.offers.open_escrow(room_id, round_id, "b")
    finally:
        await mona.aclose()

    assert opened.value == "90"
    [shown] = await talks.alice.offers.rounds(room_id)
    bob = _by_side(shown)["b"]
    assert (bob.value, bob.note, bob.opened_from) == ("90", "and not one more", "escrow")
    assert bob.revealed_seq is None  # the refusal to reveal stays visible
    assert shown.closed_at is not None
    assert shown.closed_at >= deadline
    with pytest.raises(ConflictError, match="already open"):
        await talks.bob.offers.reveal(room_id, round_id)


async def test_a_reveal_after_the_deadline_logs_the_close_first(
    talks: Talks, app: FastAPI, clock: ManualClock
) -> None:
    room_id = talks.room_id
    round_id = (
        await talks.mona.offers.open_round(room_id, QUESTION, deadline=clock() + 1000)
    ).round_id
    await talks.alice.offers.commit(room_id, round_id, "7")
    clock.advance(seconds=2)
    with pytest.raises(ConflictError, match="deadline has passed"):
        await talks.bob.offers.commit(room_id, round_id, "3")

    alice = _client_at(app, talks.alice, clock)
    try:
        await alice.offers.reveal(room_id, round_id)
    finally:
        await alice.aclose()

    [shown] = await talks.mona.offers.rounds(room_id)
    assert shown.status == "closed"
    assert [o.side for o in shown.offers] == ["a"]
    assert _by_side(shown)["a"].value == "7"


# --- what the server refuses ---------------------------------------------------------


async def _post(app: FastAPI, client: ParleyClient, act: Act) -> httpx.Response:
    """Sign `act` with `client`'s device (its fields may lie) and post it."""
    signed = sign_act(client.keystore.state.device_key, act)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=client.http.server
    ) as http:
        return await http.post(
            f"/v1/rooms/{act.room_id}/instruments",
            json={"statement": signed.model_dump(mode="json")},
            headers={"Authorization": f"Bearer {await client.token()}"},
        )


async def _common(client: ParleyClient, room_id: str) -> dict[str, Any]:
    state = client.keystore.state
    return {
        "room_id": room_id,
        "instrument_id": new_message_id(),
        "roster_version": (await client.room(room_id)).roster_version,
        "signer_device": state.device_id,
        "issued_at": 1,
    }


async def _commit(talks: Talks, client: ParleyClient, round_id: str, **fields: Any) -> Act:
    mona_device = talks.mona.whoami()["device_id"]
    values: dict[str, Any] = {
        "round_id": round_id,
        "side": "a" if client is talks.alice else "b",
        "account_id": client.whoami()["account_id"],
        "commitment": b64e(os.urandom(32)),
        "escrow": {mona_device: b64e(os.urandom(ESCROW_CIPHERTEXT_LEN))},
    }
    values.update(fields)
    return OfferCommitAct(**await _common(client, talks.room_id), **values)


async def test_the_server_refuses_bad_round_acts_and_writes_nothing(
    talks: Talks, app: FastAPI
) -> None:
    room_id = talks.room_id
    round_id = (await talks.mona.offers.open_round(room_id, QUESTION)).round_id
    logged = await talks.bob.offers.commit(room_id, round_id, "80")
    [state] = await talks.mona.offers.rounds(room_id)
    bob_commitment = state.offers[0].commitment
    alice, bob = talks.alice, talks.bob
    alice_account = alice.whoami()["account_id"]

    cases: list[tuple[ParleyClient, Act, int, str, str]] = [
        (alice, await _commit(talks, alice, "no-such-round"), 404, "not_found", "no offer round"),
        (bob, await _commit(talks, bob, round_id), 409, "conflict", "already committed"),
        (
            alice,
            await _commit(talks, alice, round_id, commitment=bob_commitment),
            409,
            "conflict",
            "copies another side's",
        ),
        (
            alice,
            await _commit(talks, alice, round_id, side="b"),
            403,
            "forbidden",
            "only a member of side b",
        ),
        (
            alice,
            await _commit(talks, alice, round_id, account_id=bob.whoami()["account_id"]),
            422,
            "invalid",
            "account of the device",
        ),
        (
            alice,
            await _commit(talks, alice, round_id, escrow={"elsewhere": b64e(bytes(2160))}),
            422,
            "invalid",
            "mediator devices",
        ),
        (
            alice,
            await _commit(
                talks,
                alice,
                round_id,
                escrow={talks.mona.whoami()["device_id"]: b64e(bytes(100))},
            ),
            422,
            "invalid",
            f"{ESCROW_CIPHERTEXT_LEN} bytes",
        ),
        (
            alice,
            RoundCloseAct(**await _common(alice, room_id), round_id=round_id),
            403,
            "forbidden",
            "only a mediator",
        ),
        (
            talks.mona,
            EscrowOpenAct(**await _common(talks.mona, room_id), round_id=round_id, side="b"),
            409,
            "conflict",
            "after the round closed",
        ),
        (
            talks.mona,
            OfferSettleAct(
                **await _common(talks.mona, room_id),
                round_id=round_id,
                commitments={"b": bob_commitment},
            ),
            409,
            "conflict",
            "only blind rounds",
        ),
    ]
    for client, act, status, code, mentions in cases:
        async with nothing_written(app):
            response = await _post(app, client, act)
        assert_error(response, status, code, mentions=mentions)

    async with nothing_written(app):
        with pytest.raises(ConflictError, match="not every side has committed"):
            await bob.offers.reveal(room_id, round_id)
        with pytest.raises(ConflictError, match="already committed"):
            await bob.offers.commit(room_id, round_id, "81")
        with pytest.raises(NotFoundError, match="no offer round"):
            await alice.offers.commit(room_id, "no-such-round", "1")
        with pytest.raises(ProtocolError, match="no offer committed"):
            await alice.offers.reveal(room_id, round_id)
        with pytest.raises(ProtocolError, match="decimal number"):
            await alice.offers.commit(room_id, round_id, "12e3")
    [after] = await talks.mona.offers.rounds(room_id)
    assert [(o.side, o.commit_seq) for o in after.offers] == [("b", logged.seq)]
    assert alice_account not in {o.account_id for o in after.offers}


async def test_the_audit_replays_a_whole_round_online_and_offline(talks: Talks) -> None:
    room_id = talks.room_id
    round_id = (
        await talks.mona.offers.open_round(room_id, QUESTION, blind=True, rule="overlap")
    ).round_id
    await talks.alice.offers.commit(room_id, round_id, "50")
    await talks.bob.offers.commit(room_id, round_id, "60")
    await talks.alice.offers.reveal(room_id, round_id)
    await talks.bob.offers.reveal(room_id, round_id)
    settled = await talks.mona.offers.settle(room_id, round_id)

    report = await verify_log(talks.mona, room_id)
    offline = verify_bundle(await export_log(talks.mona, room_id))

    assert settled.overlap is False
    assert settled.midpoint is None
    assert report.entries["instrument"] >= 6
    assert offline.entries == report.entries
