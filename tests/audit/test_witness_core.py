"""The witness core: c2sp.org/tlog-witness add-checkpoint semantics, state, and quorums."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.audit.witness import AddCheckpointRequest, Witness, check_quorum, read_witness_state
from client_sdk.protocol.errors import (
    SIZE_CONTENT_TYPE,
    VerificationError,
    WitnessConflictError,
    WitnessProofError,
    WitnessRequestError,
    WitnessSignatureError,
    WitnessStateError,
    WitnessUnknownLogError,
)
from client_sdk.protocol.merkle import (
    root_from_leaf_hashes,
)
from client_sdk.protocol.note import (
    parse_verifier_key,
    verify_cosignature,
)
from tests.audit.synthetic import WitnessKey
from tests.audit.tlog import ORIGIN, Log


def cosigned_size(witness: Witness) -> int:
    """The size the witness cosigned last for the test log."""
    followed = witness.latest(ORIGIN)
    assert followed is not None
    return followed.size


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    """A witness with its state in a temporary profile, at a fixed time."""
    return Witness(
        "witness.test", Ed25519PrivateKey.generate(), tmp_path / "witness.json", clock=lambda: 1234
    )


@pytest.fixture
def log(witness: Witness) -> Log:
    """A log of five leaves the witness follows."""
    followed = Log()
    followed.grow(5)
    witness.follow(followed.origin, followed.vkey)
    return followed


def test_the_first_checkpoint_is_cosigned_from_old_size_zero(witness: Witness, log: Log) -> None:
    line = witness.add_checkpoint(log.request(0).to_text())
    text = log.note().partition("\n\n")[0] + "\n"
    assert line.startswith("\u2014 witness.test ")
    assert line.endswith("\n")
    assert verify_cosignature(text, line, parse_verifier_key(witness.vkey)) == 1234
    stored = witness.latest(ORIGIN)
    assert stored is not None
    assert stored.size == 5
    assert stored.note == log.note()


def test_a_larger_checkpoint_is_cosigned_with_a_consistency_proof(
    witness: Witness, log: Log
) -> None:
    witness.add_checkpoint(log.request(0))
    log.grow(6)
    witness.add_checkpoint(log.request(5))
    assert cosigned_size(witness) == 11


def test_the_state_survives_a_restart(witness: Witness, log: Log, tmp_path: Path) -> None:
    witness.add_checkpoint(log.request(0))
    reopened = read_witness_state(tmp_path / "witness.json")[ORIGIN]
    assert (reopened.size, reopened.root, reopened.vkey) == (
        5,
        root_from_leaf_hashes(log.hashes),
        log.vkey,
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_stale_old_size_is_409_with_the_cosigned_size(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    log.grow(3)
    with pytest.raises(WitnessConflictError) as caught:
        witness.add_checkpoint(log.request(2))
    assert caught.value.status == 409
    assert caught.value.size == 5
    assert caught.value.content_type == SIZE_CONTENT_TYPE
    assert caught.value.body == "5\n"


def test_a_bad_consistency_proof_is_422(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    log.grow(3)
    good = log.request(5)
    bad = AddCheckpointRequest(5, (bytes(32), *good.proof[1:]), good.checkpoint)
    with pytest.raises(WitnessProofError) as caught:
        witness.add_checkpoint(bad)
    assert caught.value.status == 422
    assert cosigned_size(witness) == 5


def test_a_forked_log_is_refused_with_422(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    fork = Log(key=log.key)
    fork.hashes = log.hashes[:4]
    fork.grow(4, tag="fork")  # same first four leaves, then a different history
    with pytest.raises(WitnessProofError, match="forked or rewritten"):
        witness.add_checkpoint(fork.request(5))


def test_a_second_root_for_the_cosigned_size_is_422(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    fork = Log(key=log.key)
    fork.grow(5, tag="fork")
    with pytest.raises(WitnessProofError, match="forked") as caught:
        witness.add_checkpoint(fork.request(5))
    assert caught.value.status == 422
    assert cosigned_size(witness) == 5


def test_the_same_checkpoint_is_cosigned_again(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    assert witness.add_checkpoint(log.request(5)).startswith("\u2014 witness.test ")


def test_a_smaller_checkpoint_than_the_old_size_is_400(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    rolled_back = AddCheckpointRequest(5, (), log.note(3))
    with pytest.raises(WitnessRequestError, match="smaller than the old size") as caught:
        witness.add_checkpoint(rolled_back)
    assert caught.value.status == 400


def test_an_unknown_origin_is_404(witness: Witness) -> None:
    other = Log("audit.test/rooms/other")
    other.grow(2)
    with pytest.raises(WitnessUnknownLogError) as caught:
        witness.add_checkpoint(other.request(0))
    assert caught.value.status == 404


def test_a_checkpoint_not_signed_by_the_pinned_key_is_403(witness: Witness, log: Log) -> None:
    impostor = Log(key=Ed25519PrivateKey.generate())
    impostor.hashes = list(log.hashes)
    with pytest.raises(WitnessSignatureError) as caught:
        witness.add_checkpoint(impostor.request(0))
    assert caught.value.status == 403
    assert cosigned_size(witness) == 0


def test_a_proof_from_size_zero_must_be_empty(witness: Witness, log: Log) -> None:
    request = AddCheckpointRequest(0, (bytes(32),), log.note())
    with pytest.raises(WitnessProofError):
        witness.add_checkpoint(request)


@pytest.mark.parametrize(
    "body",
    [
        "old 0\n",
        "old -1\n\nnote\n",
        "old 01\n\nnote\n",
        "old 0\nnot-base64!\n\nnote\n",
        "old 0\n" + "AAAA\n" + "\nnote\n",  # a proof line that is not a 32-byte hash
        "old 0\n\nnot a checkpoint\n",
        "old 0\n" + (base64.b64encode(bytes(32)).decode() + "\n") * 64 + "\nnote\n",
    ],
)
def test_malformed_requests_are_400(witness: Witness, log: Log, body: str) -> None:
    with pytest.raises(WitnessRequestError) as caught:
        witness.add_checkpoint(body)
    assert caught.value.status == 400


def test_the_request_text_is_the_spec_layout(log: Log) -> None:
    log.grow(3)
    request = log.request(5)
    text = request.to_text()
    lines = text.split("\n")
    assert lines[0] == "old 5"
    assert lines[1 + len(request.proof)] == ""
    assert text.endswith(request.checkpoint)
    assert AddCheckpointRequest.parse(text.encode()) == request


def test_a_changed_log_key_is_refused(witness: Witness, log: Log) -> None:
    with pytest.raises(VerificationError, match="log key changed"):
        witness.follow(ORIGIN, Log(key=Ed25519PrivateKey.generate()).vkey)


def test_a_damaged_state_file_is_never_reset(witness: Witness, log: Log, tmp_path: Path) -> None:
    witness.add_checkpoint(log.request(0))
    state = tmp_path / "witness.json"
    document = json.loads(state.read_text())
    document["logs"][ORIGIN]["size"] = "five"
    state.write_text(json.dumps(document))
    with pytest.raises(WitnessStateError, match="damaged"):
        witness.add_checkpoint(log.request(5))


# --- quorums ------------------------------------------------------------------------


@pytest.fixture
def cosigned(log: Log) -> tuple[str, list[WitnessKey]]:
    """The log's checkpoint cosigned by two of three witnesses."""
    keys = [WitnessKey(f"w{n}.test") for n in range(3)]
    note = log.note()
    return note + keys[0].cosign(note) + keys[1].cosign(note), keys


def test_a_quorum_of_cosigners_is_met(log: Log, cosigned: tuple[str, list[WitnessKey]]) -> None:
    note, keys = cosigned
    checkpoint = check_quorum(note, log.vkey, ORIGIN, [k.vkey for k in keys], 2)
    assert checkpoint.size == 5


def test_too_few_cosigners_fail(log: Log, cosigned: tuple[str, list[WitnessKey]]) -> None:
    note, keys = cosigned
    with pytest.raises(VerificationError, match="2 of the 3 witness cosignatures"):
        check_quorum(note, log.vkey, ORIGIN, [k.vkey for k in keys], 3)


def test_a_witness_named_twice_counts_once(
    log: Log, cosigned: tuple[str, list[WitnessKey]]
) -> None:
    note, keys = cosigned
    with pytest.raises(VerificationError, match="cannot be met by 1 distinct"):
        check_quorum(note, log.vkey, ORIGIN, [keys[0].vkey, keys[0].vkey], 2)


@pytest.mark.parametrize("k", [0, -1])
def test_a_quorum_below_one_fails_closed(
    log: Log, cosigned: tuple[str, list[WitnessKey]], k: int
) -> None:
    note, keys = cosigned
    with pytest.raises(VerificationError, match="at least 1"):
        check_quorum(note, log.vkey, ORIGIN, [w.vkey for w in keys], k)


def test_no_witnesses_fail_closed(log: Log, cosigned: tuple[str, list[WitnessKey]]) -> None:
    with pytest.raises(VerificationError, match="at least one witness"):
        check_quorum(cosigned[0], log.vkey, ORIGIN, [], 1)


def test_a_quorum_needs_the_log_signature(cosigned: tuple[str, list[WitnessKey]]) -> None:
    note, keys = cosigned
    other = Log(key=Ed25519PrivateKey.generate())
    with pytest.raises(VerificationError, match="checkpoint refused"):
        check_quorum(note, other.vkey, ORIGIN, [k.vkey for k in keys], 1)


def test_a_bad_cosignature_by_a_named_witness_fails(
    log: Log, cosigned: tuple[str, list[WitnessKey]]
) -> None:
    note, keys = cosigned
    forged = WitnessKey(keys[2].name).cosign(note)  # right name, wrong key: not that witness
    lying = keys[2].cosign(log.note(4))  # right key, another checkpoint
    assert check_quorum(note + forged, log.vkey, ORIGIN, [k.vkey for k in keys], 2)
    with pytest.raises(VerificationError, match=r"bad signature by w2\.test"):
        check_quorum(note + lying, log.vkey, ORIGIN, [k.vkey for k in keys], 2)


def test_cosignatures_by_unknown_witnesses_are_ignored(
    log: Log, cosigned: tuple[str, list[WitnessKey]]
) -> None:
    note, _keys = cosigned
    with pytest.raises(VerificationError, match="0 of the 1"):
        check_quorum(note, log.vkey, ORIGIN, [WitnessKey("w9.test").vkey], 1)


def test_a_log_key_is_not_a_witness_key(log: Log, cosigned: tuple[str, list[WitnessKey]]) -> None:
    with pytest.raises(VerificationError, match="not a type 0x04"):
        check_quorum(cosigned[0], log.vkey, ORIGIN, [log.vkey], 1)
