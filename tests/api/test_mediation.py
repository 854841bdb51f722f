"""Mediation in-process: caucus channels, shuttle mode, relays and moderation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from client_sdk import ConflictError, PermissionDeniedError
from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import Action, Mode, Moderation, sign_statement
from tests.conftest import OpenProfile, enroll_profile
from tests.support.scenes import Seed, scene_value


@dataclass
class Session:
    """Mona mediates Alice (a) and Bob (b); Olga observes."""

    room_id: str
    mona: ParleyClient
    alice: ParleyClient
    bob: ParleyClient
    olga: ParleyClient


_HOMES = ("scene-mona", "scene-alice", "scene-bob", "scene-olga")


async def _build_session(app: FastAPI, root: Path) -> str:
    mona_home, alice_home, bob_home, olga_home = _HOMES
    mona = await enroll_profile(app, root / mona_home, role=Role.MEDIATOR, name="Mona")
    alice = await enroll_profile(app, root / alice_home, name="Alice")
    bob = await enroll_profile(app, root / bob_home, name="Bob")
    olga = await enroll_profile(app, root / olga_home, name="Olga")
    try:
        room = await mona.create_room("Exchange talks")
        for client, side in ((alice, Side.A), (bob, Side.B), (olga, Side.OBSERVER)):
            await mona.add_member(room.room_id, client.whoami()["account_id"], side)
    finally:
        for client in (mona, alice, bob, olga):
            await client.aclose()
    return room.room_id


SESSION = Seed("mediation-session", _build_session)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> Seed | None:
    return SESSION if "session_room" in request.fixturenames else None


@pytest.fixture
def session_room(request: pytest.FixtureRequest, database_url: str) -> str:
    value: str = scene_value(request)
    return value


@pytest.fixture
async def session(session_room: str, open_profile: OpenProfile, tmp_path: Path) -> Session:
    """Mona's room with Alice (a), Bob (b) and Olga observing (built once per module and
    backend, copied for each test)."""
    return Session(session_room, *(open_profile(tmp_path / home) for home in _HOMES))


async def _texts(client: ParleyClient, room_id: str, channel: str | None = None) -> list[str]:
    return [m.text async for m in client.messages(room_id, channel=channel)]


async def test_a_caucus_is_read_by_the_mediators_and_one_side_only(session: Session) -> None:
    await session.mona.moderate(session.room_id, Action.OPEN_CAUCUS, side=Side.A)

    await session.alice.send(session.room_id, "our real floor", channel="caucus-a")

    assert await _texts(session.mona, session.room_id, "caucus-a") == ["our real floor"]
    assert await _texts(session.alice, session.room_id, "caucus-a") == ["our real floor"]
    assert await _texts(session.bob, session.room_id) == []
    assert await _texts(session.olga, session.room_id) == []


async def test_a_closed_caucus_takes_no_messages(session: Session) -> None:
    with pytest.raises(ConflictError, match="caucus-b is not open"):
        await session.bob.send(session.room_id, "hello?", channel="caucus-b")


async def test_a_party_cannot_post_in_the_other_sides_caucus(session: Session) -> None:
    await session.mona.moderate(session.room_id, Action.OPEN_CAUCUS, side=Side.A)

    with pytest.raises(PermissionDeniedError, match="does not take part"):
        await session.bob.send(session.room_id, "let me in", channel="caucus-a")


async def test_shuttle_mode_keeps_parties_out_of_plenary(session: Session) -> None:
    await session.alice.send(session.room_id, "open floor")
    await session.mona.moderate(session.room_id, Action.SET_MODE, mode=Mode.SHUTTLE)

    with pytest.raises(PermissionDeniedError, match="shuttle"):
        await session.alice.send(session.room_id, "still talking")
    await session.mona.send(session.room_id, "the mediator speaks")

    assert await _texts(session.bob, session.room_id) == ["open floor", "the mediator speaks"]


async def test_a_relay_carries_and_checks_its_original(session: Session) -> None:
    for side in (Side.A, Side.B):
        await session.mona.moderate(session.room_id, Action.OPEN_CAUCUS, side=side)
    sent = await session.alice.send(session.room_id, "we accept 3 for 3", channel="caucus-a")

    await session.mona.relay(session.room_id, sent.seq, to="caucus-b")
    await session.mona.relay(session.room_id, sent.seq, to="plenary", edit="they accept")

    [to_bob] = [m async for m in session.bob.messages(session.room_id, channel="caucus-b")]
    mona_view = [m async for m in session.mona.messages(session.room_id, channel="plenary")]
    assert to_bob.text == "we accept 3 for 3"
    assert to_bob.relay is not None
    assert (to_bob.relay.original_seq, to_bob.relay.edited) == (sent.seq, False)
    assert to_bob.relay.checked is False  # Bob cannot read caucus-a
    assert mona_view[-1].relay is not None
    assert mona_view[-1].relay.edited
    assert mona_view[-1].relay.checked  # the mediator read the original


async def test_a_muted_member_cannot_send_until_unmuted(session: Session) -> None:
    bob_id = session.bob.whoami()["account_id"]
    await session.mona.moderate(session.room_id, Action.MUTE, account_id=bob_id)

    with pytest.raises(PermissionDeniedError, match="muted"):
        await session.bob.send(session.room_id, "objection")
    await session.mona.moderate(session.room_id, Action.UNMUTE, account_id=bob_id)
    await session.bob.send(session.room_id, "objection, again")

    assert await _texts(session.alice, session.room_id) == ["objection, again"]


async def test_observers_read_plenary_and_post_nothing(session: Session) -> None:
    await session.alice.send(session.room_id, "for the record")

    with pytest.raises(PermissionDeniedError, match="observers"):
        await session.olga.send(session.room_id, "a remark")
    assert await _texts(session.olga, session.room_id) == ["for the record"]


async def test_a_removed_member_reads_nothing_sent_afterwards(session: Session) -> None:
    await session.bob.send(session.room_id, "before")
    await session.mona.remove_member(session.room_id, session.bob.whoami()["account_id"])
    await session.alice.send(session.room_id, "after")

    # the server shows Bob no such room; his SDK, which verified a roster he was in,
    # tells him why
    with pytest.raises(PermissionDeniedError, match="you were removed from room"):
        await _texts(session.bob, session.room_id)
    assert await _texts(session.alice, session.room_id) == ["before", "after"]


async def test_lock_unlock_and_close(session: Session) -> None:
    await session.mona.moderate(session.room_id, Action.LOCK)
    with pytest.raises(ConflictError, match="locked"):
        await session.alice.send(session.room_id, "anyone?")
    await session.mona.moderate(session.room_id, Action.UNLOCK)
    await session.alice.send(session.room_id, "last words")

    closed = await session.mona.moderate(session.room_id, Action.CLOSE)

    assert closed.status == "closed"
    with pytest.raises(ConflictError, match="closed"):
        await session.alice.send(session.room_id, "too late")
    with pytest.raises(ConflictError, match="closed"):
        await session.mona.moderate(session.room_id, Action.UNLOCK)
    assert await _texts(session.bob, session.room_id) == ["last words"]


async def test_only_mediators_moderate(session: Session) -> None:
    with pytest.raises(PermissionDeniedError, match="only a mediator"):
        await session.alice.moderate(session.room_id, Action.LOCK)


async def test_a_retried_moderation_act_gets_its_first_answer(session: Session) -> None:
    mona = session.mona
    current = await mona.room(session.room_id)
    state = mona.keystore.state
    act = Moderation(
        room_id=session.room_id,
        moderation_id="retried-act",
        action=Action.LOCK,
        roster_version=current.roster_version,
        signer_device=state.device_id,
        issued_at=1,
    )
    body = {"statement": sign_statement(state.device_key, act).model_dump(mode="json")}
    path = f"/v1/rooms/{session.room_id}/moderation"

    first = await mona.http.request("POST", path, json=body)
    again = await mona.http.request("POST", path, json=body)

    assert again == first
    assert first["state"]["status"] == "locked"
