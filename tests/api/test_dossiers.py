"""Dossiers through the SDK, in-process: commit, phased disclosure, verification on
receipt, refusals before anything is sent, and refusals shown as such."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from client_sdk.client import ParleyClient
from client_sdk.client.dossier_models import ReceivedDisclosure
from client_sdk.client.dossier_store import STORE_FILENAME, DossierStore
from client_sdk.protocol.content import DossierDisclosure
from client_sdk.protocol.errors import KeystoreError, ProtocolError, VerificationError
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.models import Side
from tests.conftest import EnrollFactory, OpenProfile
from tests.support.talks import Talks, open_talks, talks_fixtures, talks_scene

RECORDS = [
    {
        "name": f"Prisoner {n}",
        "rank": "private",
        "service_number": f"SN-{n:05d}",
        "health_status": "stable",
    }
    for n in range(1, 21)
]


SCENE = talks_scene("dossier-talks", caucus_a=True)
seed, talks_room = talks_fixtures(SCENE)


@pytest.fixture
async def talks(talks_room: str, open_profile: OpenProfile, tmp_path: Path) -> Talks:
    """The talks, built once per module and backend and copied for each test."""
    return open_talks(SCENE, talks_room, open_profile, tmp_path)


async def _last_seq(client: ParleyClient, room_id: str) -> int:
    return (await client.room(room_id)).last_seq


async def test_a_phased_disclosure_is_verified_against_the_commitment(talks: Talks) -> None:
    done = await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    await talks.alice.dossiers.disclose(
        talks.room_id,
        done.dossier_id,
        records="1-5",
        fields="name,service_number",
        channel="plenary",
        phase="phase 1",
    )
    await talks.alice.dossiers.disclose(
        talks.room_id, done.dossier_id, records="6", channel="plenary", phase="phase 2"
    )

    received = await talks.bob.dossiers.received(talks.room_id)

    assert [(d.phase, d.verified, len(d.records)) for d in received] == [
        ("phase 1", True, 5),
        ("phase 2", True, 1),
    ]
    first = received[0]
    assert first.title == "Roster A"
    assert first.commit_seq == done.seq
    assert first.committed_at is not None
    assert first.committed_at <= first.disclosed_at
    assert dict(first.records[4].fields) == {"name": "Prisoner 5", "service_number": "SN-00005"}
    assert received[1].records[0].number == 6
    assert dict(received[1].records[0].fields) == RECORDS[5]


async def test_a_caucus_disclosure_reaches_the_mediator_only(talks: Talks) -> None:
    done = await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    await talks.alice.dossiers.disclose(
        talks.room_id, done.dossier_id, records="1-3", fields="name", channel="caucus-a"
    )

    assert await talks.bob.dossiers.received(talks.room_id) == []
    [seen] = await talks.mona.dossiers.received(talks.room_id)
    assert seen.verified
    assert seen.channel == "caucus-a"
    assert len(seen.records) == 3
    assert talks.alice.dossiers.log(talks.room_id, done.dossier_id)[0].to == ["Mona"]


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ({"name": "x"}, "a JSON list of objects"),
        ([{"name": {"nested": {"too": "deep"}}}], "nest at most one level"),
        ([{"_sd": "x"}], "reserved by SD-JWT"),
        ([], "at least one record"),
    ],
)
async def test_a_malformed_record_set_is_refused_and_nothing_is_committed(
    talks: Talks, records: Any, reason: str
) -> None:
    before = await _last_seq(talks.alice, talks.room_id)

    with pytest.raises(ProtocolError, match=reason):
        await talks.alice.dossiers.commit(talks.room_id, records, title="Bad")

    assert await _last_seq(talks.alice, talks.room_id) == before
    assert talks.alice.dossiers.own(talks.room_id) == []


@pytest.mark.parametrize(
    ("records", "fields", "reason"),
    [
        ("21", None, "the dossier has 20 records"),
        ("1-3", "name,blood_type", "no chosen record has the field 'blood_type'"),
        ("0", None, "record numbers start at 1"),
    ],
)
async def test_a_disclosure_of_what_does_not_exist_is_refused_before_sending(
    talks: Talks, records: str, fields: str | None, reason: str
) -> None:
    done = await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    before = await _last_seq(talks.alice, talks.room_id)

    with pytest.raises(ProtocolError, match=reason):
        await talks.alice.dossiers.disclose(
            talks.room_id, done.dossier_id, records=records, fields=fields, channel="plenary"
        )

    assert await _last_seq(talks.alice, talks.room_id) == before


async def test_an_unknown_dossier_or_channel_is_refused_before_sending(talks: Talks) -> None:
    done = await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    with pytest.raises(ProtocolError, match="no dossier"):
        await talks.bob.dossiers.disclose(
            talks.room_id, done.dossier_id, records="1", channel="plenary"
        )
    with pytest.raises(ProtocolError, match="unknown channel"):
        await talks.alice.dossiers.disclose(
            talks.room_id, done.dossier_id, records="1", channel="backroom"
        )


async def _send_raw(client: ParleyClient, room_id: str, content: dict[str, Any]) -> None:
    await client._sender.send(room_id, content, channel="plenary")


async def test_a_tampered_presentation_is_shown_refused_with_the_reason(talks: Talks) -> None:
    done = await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    sent = await talks.alice.dossiers.disclose(
        talks.room_id, done.dossier_id, records="1", fields="name", channel="plenary"
    )
    jwt, *disclosures, _ = sent.presentation.split("~")
    forged = "~".join([jwt, *reversed(disclosures), ""]).replace(jwt[-8:], "AAAAAAAA")
    await _send_raw(
        talks.alice,
        talks.room_id,
        DossierDisclosure(
            dossier_id=done.dossier_id, commit_seq=done.seq, presentation=forged
        ).model_dump(exclude_none=True),
    )

    _, refused = await talks.bob.dossiers.received(talks.room_id)

    assert not refused.verified
    assert refused.records == ()
    assert refused.refused is not None
    assert "not the one committed" in refused.refused


async def test_a_disclosure_by_someone_else_than_the_issuer_is_refused(talks: Talks) -> None:
    done = await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    sent = await talks.alice.dossiers.disclose(
        talks.room_id, done.dossier_id, records="2", channel="caucus-a"
    )
    # Mona read it in the caucus and replays it in plenary as if it were hers to give.
    await talks.mona._sender.send(
        talks.room_id,
        DossierDisclosure(
            dossier_id=done.dossier_id, commit_seq=done.seq, presentation=sent.presentation
        ).model_dump(exclude_none=True),
        channel="plenary",
    )

    [replayed] = await talks.bob.dossiers.received(talks.room_id)

    assert replayed.refused == "disclosed by Mona, but committed by Alice"


async def test_a_malformed_disclosure_is_refused_not_raised(talks: Talks) -> None:
    await _send_raw(talks.alice, talks.room_id, {"type": "dossier-disclosure", "x": 1})

    [refused] = await talks.bob.dossiers.received(talks.room_id)

    assert refused.refused is not None
    assert "malformed dossier-disclosure" in refused.refused


async def test_a_presentation_file_verifies_only_against_a_commitment_in_the_room(
    talks: Talks, enroll: EnrollFactory
) -> None:
    done = await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    sent = await talks.alice.dossiers.disclose(
        talks.room_id, done.dossier_id, records="3-4", channel="caucus-a"
    )

    verified = await talks.bob.dossiers.verify(talks.room_id, sent.presentation)
    assert [r.number for r in verified.records] == [3, 4]

    other = await talks.mona.create_room("Other talks")
    await talks.mona.add_member(other.room_id, talks.bob.whoami()["account_id"], Side.B)
    with pytest.raises(VerificationError, match="not one committed in room"):
        await talks.bob.dossiers.verify(other.room_id, sent.presentation)


async def test_the_issuer_store_is_sealed_to_the_device_key(talks: Talks) -> None:
    await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    path = talks.alice.keystore.home / STORE_FILENAME

    assert b"Prisoner" not in path.read_bytes()
    assert talks.alice.dossiers.own(talks.room_id)[0].records == len(RECORDS)
    state = talks.alice.keystore.state
    with pytest.raises(KeystoreError, match="cannot be opened"):
        DossierStore(talks.alice.keystore.home, state.device_id, SigningKey.generate()).read()


async def test_a_reader_starting_after_the_commitment_fetches_it(talks: Talks) -> None:
    done = await talks.alice.dossiers.commit(talks.room_id, RECORDS, title="Roster A")
    await talks.alice.send(talks.room_id, "The list follows.")
    sent = await talks.alice.dossiers.disclose(
        talks.room_id, done.dossier_id, records="7", channel="plenary", phase="phase 1"
    )
    await talks.alice.send(talks.room_id, "That was the first name.")

    tracker = talks.bob.dossiers.tracker(talks.room_id)
    seen = [await tracker.see(m) async for m in talks.bob.messages(talks.room_id, after=done.seq)]

    assert seen[0] is None
    assert seen[2] is None
    assert isinstance(seen[1], ReceivedDisclosure)
    assert seen[1].seq == sent.seq
    assert seen[1].verified
    assert seen[1].committed_at is not None
