"""Offline verification of audit bundles built from the protocol code alone (no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client_sdk.audit import (
    AuditBundle,
    AuditFailure,
    KnownCheckpoint,
    parse_bundle,
    read_bundle,
    verify_bundle,
    write_bundle,
)
from client_sdk.protocol.encoding import b64d, b64e, canonical_json
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import SigLabel
from client_sdk.protocol.leaf import parse_leaf
from client_sdk.protocol.merkle import root_from_leaf_hashes
from client_sdk.protocol.models import Side
from tests.audit import synthetic
from tests.audit.synthetic import WitnessKey


@pytest.fixture
def talks() -> synthetic.Room:
    """Rosters at indexes 0-2, then 9 messages (indexes 3-11)."""
    return synthetic.room(messages=9)


def edited(bundle: AuditBundle, index: int, edit: Any) -> AuditBundle:
    """The bundle with `edit` applied to a copy of entry `index`."""
    entries = json.loads(json.dumps(bundle.entries))
    edit(entries[index])
    return bundle.model_copy(update={"entries": entries})


def edit_leaf(entry: dict[str, Any], **changes: Any) -> None:
    """Change fields of an entry's leaf, keeping it canonical."""
    leaf = parse_leaf(b64d(entry["leaf"])).model_copy(update=changes)
    entry["leaf"] = b64e(leaf.to_bytes())


def failure(bundle: AuditBundle, **options: Any) -> AuditFailure:
    """The failure of a bundle that must not verify."""
    with pytest.raises(AuditFailure) as caught:
        verify_bundle(bundle, **options)
    return caught.value


def test_a_room_bundle_verifies(talks: synthetic.Room) -> None:
    report = verify_bundle(talks.bundle())
    assert report.size == 12
    assert report.entries == {"roster": 3, "message": 9}
    assert report.checkpoints == (12,)


def test_a_directory_bundle_verifies() -> None:
    log, _ = synthetic.directory(people=3)
    report = verify_bundle(log.bundle())
    assert report.entries == {"registration": 3, "device": 3, "encryption-key": 3}


def test_a_changed_envelope_is_named_by_index(talks: synthetic.Room) -> None:
    def edit(entry: dict[str, Any]) -> None:
        entry["signed"]["header"]["sent_at"] += 1

    caught = failure(edited(talks.bundle(), 7, edit))
    assert caught.index == 7
    assert str(caught).startswith(f"log {talks.log.log_id} index 7: ")


def test_a_leaf_that_misstates_its_signature_is_named(talks: synthetic.Room) -> None:
    other = talks.bundle().entries[4]["signed"]["signature"]
    caught = failure(edited(talks.bundle(), 5, lambda e: edit_leaf(e, signature=other)))
    assert caught.index == 5
    assert "signature" in caught.reason


def test_a_changed_leaf_time_is_located_between_checkpoints(talks: synthetic.Room) -> None:
    # Only the tree notices: the leaf still records the right payload and signature.
    bundle = talks.log.bundle(sizes=[4, 8], accounts={talks.mona.account_id: talks.mona.record()})
    caught = failure(edited(bundle, 6, lambda e: edit_leaf(e, server_time=1)))
    assert caught.index == 4
    assert str(caught).startswith(f"log {talks.log.log_id} index 4..7: a leaf in this range")
    assert "signed at size 8" in caught.reason


def test_a_checkpoint_with_a_bad_signature_is_refused(talks: synthetic.Room) -> None:
    bundle = talks.bundle()
    note = bundle.checkpoints[-1]
    tampered = note[:-10] + ("A" if note[-10] != "A" else "B") + note[-9:]
    caught = failure(bundle.model_copy(update={"checkpoints": [tampered]}))
    assert "checkpoint refused" in caught.reason


def test_a_bad_cosignature_is_refused(talks: synthetic.Room) -> None:
    witness = WitnessKey("w1.test")
    older = talks.log.checkpoint(5)
    bundle = talks.bundle(witnesses=[witness.vkey], cosigned=[witness.cosign(older)])
    assert "bad cosignature" in failure(bundle).reason


def test_a_bundle_with_another_log_key_is_refused(talks: synthetic.Room) -> None:
    other = synthetic.room(messages=0)
    caught = failure(talks.bundle(), log_vkey=other.log.vkey)
    assert "log key" in caught.reason


def test_a_roster_signed_by_a_party_is_refused(talks: synthetic.Room) -> None:
    talks.add_roster(
        talks.alice,
        [talks.mona.member(Side.MEDIATOR), talks.alice.member(Side.A)],
    )
    assert failure(talks.bundle()).index == 12


def test_a_first_roster_by_someone_not_a_mediator_in_the_directory_fails() -> None:
    talks = synthetic.room(messages=1)
    record = talks.mona.record()
    record["role"] = "party"  # the directory record is self-signed: the role lives in it
    body = {**talks.mona.registration().body, "role": "party"}
    record["registration"] = {
        "body": body,
        "signature": b64e(talks.mona.account_key.sign(SigLabel.REGISTRATION, canonical_json(body))),
    }
    bundle = talks.log.bundle(accounts={talks.mona.account_id: record})
    caught = failure(bundle)
    assert caught.index == 0
    assert "not a mediator" in caught.reason


def test_a_message_from_a_device_outside_the_roster_fails(talks: synthetic.Room) -> None:
    stranger = synthetic.person("Eve", talks.alice.role)
    talks.send(stranger)
    assert failure(talks.bundle()).index == 12


def test_a_replayed_roster_version_fails(talks: synthetic.Room) -> None:
    entries = talks.log.entries
    talks.log.append(
        "roster",
        talks.mona.device_id,
        entries[2]["signed"],
        b"",
        entries[2]["signed"]["signature"],
    )
    assert failure(talks.bundle()).index == 12


def test_missing_entries_fail(talks: synthetic.Room) -> None:
    bundle = talks.bundle()
    shorter = bundle.model_copy(update={"entries": bundle.entries[:10]})
    assert failure(shorter).index == 10


def test_a_rollback_below_a_known_checkpoint_fails(talks: synthetic.Room) -> None:
    seen = KnownCheckpoint("an earlier audit", 20, bytes(32))
    assert "rolled back" in failure(talks.bundle(), known=[seen]).reason


def test_a_history_other_than_a_known_checkpoint_fails(talks: synthetic.Room) -> None:
    seen = KnownCheckpoint("an earlier audit", 5, bytes(32))
    assert "rewritten or forked" in failure(talks.bundle(), known=[seen]).reason


def test_a_known_checkpoint_the_log_extends_is_reported(talks: synthetic.Room) -> None:
    bundle = talks.bundle()
    seen = KnownCheckpoint("an earlier audit", 5, root_from_leaf_hashes(talks.log.hashes[:5]))
    assert verify_bundle(bundle, known=[seen]).consistent_with == ("an earlier audit (size 5)",)


def test_a_witness_quorum_is_checked(talks: synthetic.Room) -> None:
    w1, w2, w3 = (WitnessKey(f"w{n}.test") for n in (1, 2, 3))
    newest = talks.log.checkpoint(12)
    bundle = talks.bundle(
        witnesses=[w1.vkey, w2.vkey], cosigned=[w1.cosign(newest), w2.cosign(newest)]
    )
    report = verify_bundle(bundle, witnesses=[w1.vkey, w2.vkey, w3.vkey], quorum=2)
    assert report.quorum == (12, ("w1.test", "w2.test"))
    assert report.cosignatures == {12: ("w1.test", "w2.test")}
    with pytest.raises(VerificationError, match="2 of the 3"):
        verify_bundle(bundle, witnesses=[w1.vkey, w2.vkey, w3.vkey])


def test_a_quorum_without_cosignatures_fails(talks: synthetic.Room) -> None:
    w1 = WitnessKey("w1.test")
    assert "no checkpoint is cosigned" in failure(talks.bundle(), witnesses=[w1.vkey]).reason


def test_a_process_pool_finds_the_same_result(talks: synthetic.Room) -> None:
    for _ in range(600):
        talks.send(talks.bob)
    bundle = talks.bundle()
    report = verify_bundle(bundle, workers=2, parallel_threshold=0)
    assert report.parallel
    assert report.checkpoints == (256, 512, 612)

    def edit(entry: dict[str, Any]) -> None:
        entry["signed"]["header"]["sent_at"] += 1

    broken = edited(edited(bundle, 300, edit), 555, edit)
    assert failure(broken, workers=2, parallel_threshold=0).index == 300
    assert failure(broken, workers=1).index == 300


@pytest.mark.parametrize("name", ["log.json", "log.json.gz"])
def test_bundles_round_trip_through_files(talks: synthetic.Room, tmp_path: Path, name: str) -> None:
    bundle = talks.bundle()
    write_bundle(bundle, tmp_path / name)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b'{"')
    assert read_bundle(tmp_path / name) == bundle


def test_something_else_is_not_a_bundle() -> None:
    with pytest.raises(ProtocolError, match="not an audit bundle"):
        parse_bundle(b'{"format": "something-else"}')
