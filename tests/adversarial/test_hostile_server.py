"""The hostile-server harness: one test per attack of `tests.support.attacks`.

Each test lets the server tell one lie to Alice's SDK and asserts three things:
the SDK raises the `VerificationError` subclass that names what the server did
(with words a mediator understands), nothing false was handed over as
verified, and what the victim stored (her newest checkpoint) did not move
backwards. The scene is built once per module and copied for each test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from client_sdk.audit import (
    export_tiled,
    keystore_witness,
    read_bundle,
    register_witness,
    verify_bundle,
    verify_log,
    witness_once,
)
from client_sdk.protocol.errors import (
    AlteredError,
    AuditFailure,
    DroppedEventError,
    ForkedError,
    KeySubstitutedError,
    MemberAddedError,
    ReorderedError,
    ReplayedError,
    RevokedServedError,
    RolledBackError,
    StaleRosterError,
    UnwitnessedError,
    WithheldError,
)
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.models import Role
from tests.adversarial.conftest import EnrollThrough
from tests.support import attacks
from tests.support.attacks import Talks, account_id


async def _read(talks: Talks, into: list[str]) -> None:
    """Alice reads the room; each message's text lands in `into` as it is handed over."""
    async for message in talks.alice.messages(talks.room_id):
        into.append(message.text)


async def test_server_drops_an_event(talks: Talks) -> None:
    await attacks.drop_an_event(talks)

    read: list[str] = []
    with pytest.raises(DroppedEventError, match=r"dropped an event.*events 4\.\.4 are missing"):
        await _read(talks, read)
    assert read == []


async def test_server_reorders_two_events(talks: Talks) -> None:
    await attacks.reorder_two_events(talks)

    read: list[str] = []
    with pytest.raises(ReorderedError, match=r"reordered events.*event 5 .*before event 4"):
        await _read(talks, read)
    assert read == []


async def test_server_replays_an_old_envelope(talks: Talks) -> None:
    message_id = await attacks.replay_an_old_envelope(talks)

    read: list[str] = []
    with pytest.raises(
        ReplayedError,
        match=f"replayed an old event.*event 5 replays message {message_id}, first seen at event 4",
    ):
        await _read(talks, read)
    assert read == []  # a page is handed over only once all of it is checked


async def test_server_swaps_a_ciphertext(talks: Talks) -> None:
    await attacks.swap_a_ciphertext(talks)

    read: list[str] = []
    with pytest.raises(AlteredError, match=r"altered an event.*event 4: ciphertext does not match"):
        await _read(talks, read)
    assert read == []


async def test_server_swaps_a_key_wrap(talks: Talks) -> None:
    await attacks.swap_a_key_wrap(talks)

    read: list[str] = []
    with pytest.raises(AlteredError, match=r"altered an event.*index 3: the leaf's payload_sha256"):
        await _read(talks, read)
    assert read == []


async def test_server_withholds_the_tail(talks: Talks) -> None:
    await attacks.withhold_the_tail(talks)

    read: list[str] = []
    with pytest.raises(
        WithheldError,
        match=r"withholding events.*checkpoint covers 5 events.*events 5\.\.5 are hidden from you",
    ):
        await _read(talks, read)
    assert read == ["First."]  # shown, then the withholding named: never a silent end


async def test_server_serves_a_forked_log_to_one_member(talks: Talks) -> None:
    fork = await attacks.serve_a_forked_log(talks)
    stored = talks.alice.keystore.checkpoint(talks.room_id)

    read: list[str] = []
    with pytest.raises(ForkedError, match=f"forked the log.*size {fork.size} is not consistent"):
        await _read(talks, read)
    assert read == []
    assert talks.alice.keystore.checkpoint(talks.room_id) == stored


async def test_server_forks_the_log_for_another_member(talks: Talks) -> None:
    seq = await attacks.fork_the_log_for_another_member(talks)

    with pytest.raises(ForkedError, match=rf"Bob \(event {seq}\).*different histories"):
        await _read(talks, [])


async def test_the_audit_catches_a_fork_through_members_gossip(talks: Talks) -> None:
    seq = await attacks.fork_the_log_for_another_member(talks)

    with pytest.raises(AuditFailure, match="different histories") as caught:
        await verify_log(talks.mediator, talks.room_id)
    assert (caught.value.index, caught.value.kind) == (seq - 1, ForkedError.kind)


async def test_the_offline_audit_catches_a_fork_through_members_gossip(
    talks: Talks, tmp_path: Path
) -> None:
    seq = await attacks.fork_the_log_for_another_member(talks)
    path = tmp_path / "room.tar.gz"
    with path.open("wb") as out:
        await export_tiled(talks.mediator, talks.room_id, out)

    with pytest.raises(AuditFailure, match="different histories") as caught:
        verify_bundle(read_bundle(path))
    assert (caught.value.index, caught.value.kind) == (seq - 1, ForkedError.kind)


async def test_server_rolls_a_checkpoint_back(talks: Talks) -> None:
    await attacks.roll_a_checkpoint_back(talks)

    read: list[str] = []
    with pytest.raises(
        RolledBackError,
        match=r"rolled back the log.*size 4 its newest, but this device verified size 5",
    ):
        await _read(talks, read)
    assert read == []
    stored = talks.alice.keystore.checkpoint(talks.room_id)
    assert stored is not None
    assert stored.size == 5


async def test_server_rolls_its_log_back(talks: Talks) -> None:
    await attacks.roll_the_log_back(talks)

    with pytest.raises(
        RolledBackError,
        match=r"rolled back the log.*now has 4 entries, but this device verified .* size 5",
    ):
        await _read(talks, [])


async def test_server_rolls_the_directory_back(talks: Talks) -> None:
    await attacks.roll_the_directory_back(talks)

    with pytest.raises(RolledBackError, match=r"rolled back the log: log directory: .*entries"):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_server_substitutes_a_device_key(talks: Talks) -> None:
    await attacks.substitute_a_device_key(talks)

    with pytest.raises(
        KeySubstitutedError, match=f"substituted a key.*account {account_id(talks.bob)}"
    ):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_server_adds_a_roster_member(talks: Talks) -> None:
    eve = await attacks.add_a_roster_member(talks)

    with pytest.raises(MemberAddedError, match=f"added a member.*add {eve.name}"):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_server_withholds_a_removal(talks: Talks) -> None:
    await attacks.withhold_a_removal(talks)

    read: list[str] = []
    with pytest.raises(DroppedEventError, match=r"dropped an event.*events 4\.\.4 are missing"):
        await _read(talks, read)
    assert read == []


async def test_server_serves_a_stale_roster_to_a_sender(talks: Talks) -> None:
    await attacks.serve_a_stale_roster_to_a_sender(talks)

    with pytest.raises(
        StaleRosterError,
        match=(
            r"stale roster.*logged as event 5 sealed to roster version 3.*"
            r"version 4 took effect at event 4"
        ),
    ):
        await talks.alice.send(talks.room_id, "Bob must not read this.")


async def test_readers_report_a_message_sealed_to_a_stale_roster_and_read_on(
    talks: Talks,
) -> None:
    await attacks.serve_a_stale_roster_to_a_sender(talks)
    with pytest.raises(StaleRosterError):
        await talks.alice.send(talks.room_id, "Bob must not read this.")
    await talks.mediator.send(talks.room_id, "Let us continue.")

    read = [m async for m in talks.mediator.messages(talks.room_id)]

    assert [(m.seq, m.text) for m in read] == [(5, ""), (6, "Let us continue.")]
    refused = read[0].refused
    assert isinstance(refused, StaleRosterError)
    assert "event 5 from Alice is sealed to roster version 3" in str(refused)


async def test_server_serves_a_revoked_device_as_current(talks: Talks) -> None:
    device = await attacks.serve_a_revoked_device_as_current(talks)

    with pytest.raises(
        RevokedServedError,
        match=rf"revoked device as current.*serves device {device} as in use",
    ):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_server_strips_a_cosignature(talks: Talks, enroll_through: EnrollThrough) -> None:
    auditor = await enroll_through(role=Role.AUDITOR, name="Audrey")
    witness = keystore_witness(auditor.keystore)
    await register_witness(auditor, witness)
    assert await witness_once(auditor, witness, DIRECTORY_LOG_ID) is not None
    attacks.strip_cosignatures(talks.server, DIRECTORY_LOG_ID)

    with pytest.raises(AuditFailure) as caught:
        await verify_log(talks.alice, DIRECTORY_LOG_ID, witnesses=[witness.vkey], quorum=1)
    assert caught.value.kind == UnwitnessedError.kind
    assert "no witness quorum is met" in str(caught.value)


def test_every_attack_of_the_harness_has_its_test() -> None:
    tested = Path(__file__).read_text()
    assert [name for name in attacks.ATTACKS if f"attacks.{name}(" not in tested] == []
