"""Receipts (docs/design.md §7) through the SDK and the API: acknowledged by hand and
automatically, listed from the log, and every forged or repeated receipt refused by
the server with nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.audit import export_log, verify_bundle, verify_log
from client_sdk.client import ParleyClient
from client_sdk.protocol.envelope import new_message_id
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.instruments.acts import sign_act
from client_sdk.protocol.instruments.receipts import ReceiptAct
from client_sdk.protocol.models import Side
from client_sdk.protocol.statements import Action
from tests.api.factories import assert_error, nothing_written
from tests.conftest import OpenProfile
from tests.support.talks import Talks, open_talks, talks_fixtures, talks_scene

RECORDS = [{"name": f"Prisoner {n}", "rank": "private"} for n in range(1, 6)]


SCENE = talks_scene("receipt-talks")
seed, talks_room = talks_fixtures(SCENE)


@pytest.fixture
async def talks(talks_room: str, open_profile: OpenProfile, tmp_path: Path) -> Talks:
    """The talks, built once per module and backend and copied for each test."""
    return open_talks(SCENE, talks_room, open_profile, tmp_path)


async def _read_all(client: ParleyClient, room_id: str) -> list[int]:
    return [m.seq async for m in client.messages(room_id)]


async def test_an_acknowledged_message_is_listed_with_who_and_when(talks: Talks) -> None:
    sent = await talks.alice.send(talks.room_id, "our proposal stands")

    ack = await talks.bob.acknowledge(talks.room_id, sent.seq)

    assert ack.seq == sent.seq
    assert ack.name == "Bob"
    assert ack.account_id == talks.bob.whoami()["account_id"]
    assert ack.receipt_seq > sent.seq
    listed = await talks.alice.receipts(talks.room_id)
    assert listed == [ack]
    assert await talks.mona.receipts(talks.room_id, sent.seq) == [ack]
    assert await talks.mona.receipts(talks.room_id, sent.seq + 1) == []
    # Asking again answers with the receipt already logged, and logs nothing more.
    before = (await talks.bob.room(talks.room_id)).last_seq
    assert await talks.bob.acknowledge(talks.room_id, sent.seq) == ack
    assert (await talks.bob.room(talks.room_id)).last_seq == before


async def test_plain_messages_are_not_acknowledged_unless_the_profile_says_so(
    talks: Talks,
) -> None:
    first = await talks.alice.send(talks.room_id, "one")
    await _read_all(talks.bob, talks.room_id)
    assert await talks.alice.receipts(talks.room_id) == []

    talks.bob.keystore.set_auto_receipts(True)
    second = await talks.alice.send(talks.room_id, "two")
    await _read_all(talks.bob, talks.room_id)

    acked = {a.seq for a in await talks.alice.receipts(talks.room_id)}
    assert acked == {first.seq, second.seq}
    assert talks.bob.keystore.state.auto_receipts  # kept in the profile


async def test_a_disclosure_is_acknowledged_when_read(talks: Talks) -> None:
    done = await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    disclosed = await talks.alice.dossiers.disclose(
        talks.room_id, done.dossier_id, records="1-2", channel="plenary", phase="phase 1"
    )

    await talks.bob.dossiers.received(talks.room_id)

    acks = await talks.mona.receipts(talks.room_id)
    assert [(a.seq, a.name) for a in acks] == [(disclosed.seq, "Bob")]
    # Reading again does not acknowledge twice.
    await talks.bob.dossiers.received(talks.room_id)
    assert len(await talks.mona.receipts(talks.room_id)) == 1


async def test_a_device_cannot_acknowledge_what_it_cannot_read(talks: Talks) -> None:
    await talks.mona.moderate(talks.room_id, Action.OPEN_CAUCUS, side=Side.A)
    private = await talks.alice.send(talks.room_id, "for Mona only", channel="caucus-a")

    with pytest.raises(ProtocolError, match="no message"):
        await talks.bob.acknowledge(talks.room_id, private.seq)
    assert await talks.mona.receipts(talks.room_id) == []


# --- what the server refuses ---------------------------------------------------------


async def _post_receipt(
    app: FastAPI, client: ParleyClient, room_id: str, /, **fields: Any
) -> httpx.Response:
    """Sign a receipt act with `client`'s device, as given (fields may lie), and post it
    to `room_id` (whatever room the act names)."""
    room = await client.room(room_id)
    state = client.keystore.state
    values: dict[str, Any] = {
        "room_id": room_id,
        "instrument_id": new_message_id(),
        "roster_version": room.roster_version,
        "signer_device": state.device_id,
        "issued_at": 1,
        "account_id": state.account_id,
    }
    values.update(fields)
    signed = sign_act(state.device_key, ReceiptAct(**values))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=client.http.server
    ) as http:
        return await http.post(
            f"/v1/rooms/{room_id}/instruments",
            json={"statement": signed.model_dump(mode="json")},
            headers={"Authorization": f"Bearer {await client.token()}"},
        )


async def _leaf(client: ParleyClient, room_id: str, seq: int) -> str:
    """The leaf hash of event `seq`, as the log serves it."""
    answer = await client.http.request(
        "GET", f"/v1/logs/{room_id}/entries", params={"start": seq - 1, "end": seq}
    )
    return str(answer["entries"][0]["leaf_hash"])


async def test_the_server_refuses_forged_and_repeated_receipts(talks: Talks, app: FastAPI) -> None:
    sent = await talks.alice.send(talks.room_id, "hello")
    good = await _leaf(talks.bob, talks.room_id, sent.seq)
    other = await _leaf(talks.bob, talks.room_id, sent.seq - 1)
    bob_account = talks.bob.whoami()["account_id"]
    alice_account = talks.alice.whoami()["account_id"]
    room_id = talks.room_id

    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"seq": sent.seq, "leaf_sha256": other}, 422, "invalid", "leaf hash"),
        ({"seq": sent.seq + 5, "leaf_sha256": good}, 404, "not_found", "no event"),
        (
            {"seq": sent.seq, "leaf_sha256": good, "account_id": alice_account},
            422,
            "invalid",
            "account of the device",
        ),
        ({"seq": sent.seq, "leaf_sha256": good, "roster_version": 1}, 409, "conflict", "stale"),
        ({"seq": sent.seq, "leaf_sha256": good, "room_id": "elsewhere"}, 422, "invalid", "room"),
    ]
    for fields, status, code, mentions in cases:
        async with nothing_written(app):
            response = await _post_receipt(app, talks.bob, room_id, **fields)
        assert_error(response, status, code, mentions=mentions)

    logged = await _post_receipt(app, talks.bob, room_id, seq=sent.seq, leaf_sha256=good)
    assert logged.status_code == 201, logged.text
    receipt_seq = logged.json()["seq"]
    receipt_leaf = await _leaf(talks.bob, room_id, receipt_seq)

    async with nothing_written(app):
        again = await _post_receipt(
            app, talks.bob, room_id, seq=sent.seq, leaf_sha256=good, instrument_id="another-id"
        )
        of_receipt = await _post_receipt(
            app, talks.alice, room_id, seq=receipt_seq, leaf_sha256=receipt_leaf
        )
    assert_error(again, 409, "conflict", mentions="already acknowledged")
    assert_error(of_receipt, 409, "conflict", mentions="is a receipt")
    assert [a.account_id for a in await talks.mona.receipts(room_id)] == [bob_account]


async def test_no_act_lands_in_a_locked_room(talks: Talks, app: FastAPI) -> None:
    sent = await talks.alice.send(talks.room_id, "hello")
    good = await _leaf(talks.bob, talks.room_id, sent.seq)
    await talks.mona.moderate(talks.room_id, Action.LOCK)

    async with nothing_written(app):
        response = await _post_receipt(
            app, talks.bob, talks.room_id, seq=sent.seq, leaf_sha256=good
        )
    assert_error(response, 409, "conflict", mentions="locked")


async def test_the_audit_replays_receipts_online_and_offline(talks: Talks) -> None:
    sent = await talks.alice.send(talks.room_id, "hello")
    await talks.bob.acknowledge(talks.room_id, sent.seq)
    await talks.mona.acknowledge(talks.room_id, sent.seq)

    report = await verify_log(talks.mona, talks.room_id)
    offline = verify_bundle(await export_log(talks.mona, talks.room_id))

    assert report.entries["instrument"] == 2
    assert offline.entries == report.entries
    assert offline.root == report.root
