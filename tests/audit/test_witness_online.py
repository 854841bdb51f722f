"""An auditor's witness against the real app: cosignatures stored and served, refusals."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from client_sdk.audit import (
    AuditFailure,
    fetch_checkpoint,
    keystore_witness,
    register_witness,
    verify_log,
    witness_once,
)
from client_sdk.audit.witness import Witness
from client_sdk.protocol.errors import (
    PermissionDeniedError,
    VerificationError,
    WitnessProofError,
    WitnessRequestError,
)
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.merkle import root_from_leaf_hashes
from client_sdk.protocol.note import Checkpoint, cosign, parse_verifier_key, verify_cosignature
from server.config import Settings
from server.log.signer import CheckpointSigner
from tests.audit.conftest import Rewriter, Talks, behind, newest_only, sqlite_only
from tests.audit.synthetic import WitnessKey
from tests.conftest import reopen


@pytest.fixture
async def witness(talks: Talks) -> Witness:
    """Audrey's witness, registered, having cosigned the room's checkpoint of size 6."""
    own = keystore_witness(talks.auditor.keystore)
    await register_witness(talks.auditor, own)
    done = await witness_once(talks.auditor, own, talks.room_id)
    assert done is not None
    assert done.size == 6
    return own


async def test_the_cosignature_is_stored_and_served_with_the_checkpoint(
    talks: Talks, witness: Witness
) -> None:
    note = await fetch_checkpoint(talks.alice, talks.room_id)
    text, _, signatures = note.partition("\n\n")
    lines = [line for line in signatures.splitlines() if line.startswith(f"\u2014 {witness.name} ")]
    assert len(lines) == 1
    verify_cosignature(text + "\n", lines[0], parse_verifier_key(witness.vkey))
    info = await talks.alice.http.request("GET", f"/v1/logs/{talks.room_id}")
    assert info["cosigned_size"] == 6


async def test_each_new_checkpoint_is_cosigned_once(talks: Talks, witness: Witness) -> None:
    assert await witness_once(talks.auditor, witness, talks.room_id) is None
    await talks.bob.send(talks.room_id, "One more thing.")
    await talks.alice.send(talks.room_id, "Yes?")
    done = await witness_once(talks.auditor, witness, talks.room_id)
    assert done is not None
    assert done.size == 8
    followed = witness.latest(done.origin)
    assert followed is not None
    assert (followed.size, followed.root) == (8, done.root)


@sqlite_only
async def test_the_witness_key_lives_in_the_keystore(talks: Talks, witness: Witness) -> None:
    again = keystore_witness(reopen(talks.auditor))
    assert (again.name, again.vkey) == (witness.name, witness.vkey)
    await register_witness(talks.auditor, again)  # registering again is harmless
    listed = await talks.alice.http.request("GET", "/v1/witnesses")
    assert [w["vkey"] for w in listed] == [witness.vkey]


@sqlite_only
async def test_only_auditors_run_witnesses(talks: Talks) -> None:
    with pytest.raises(PermissionDeniedError):
        await register_witness(talks.alice, keystore_witness(talks.alice.keystore))


@sqlite_only
async def test_the_directory_log_is_witnessed(talks: Talks, witness: Witness) -> None:
    done = await witness_once(talks.auditor, witness, DIRECTORY_LOG_ID)
    assert done is not None
    assert done.size == 12


def forged(settings: Settings, origin: str, size: int) -> str:
    """A checkpoint of a tree that is not the log's, signed with the real log key."""
    signer = CheckpointSigner.load(signer_key=None, data_dir=settings.data_dir)
    return signer.sign(Checkpoint(origin, size, root_from_leaf_hashes([bytes(32)] * size)))


@sqlite_only
async def test_a_witness_refuses_a_forked_log(
    app: FastAPI, settings: Settings, talks: Talks, witness: Witness
) -> None:
    await talks.alice.send(talks.room_id, "After the fork.")
    origin = (await talks.auditor.logs.identity(talks.room_id)).origin
    seam = Rewriter(app)
    fork = forged(settings, origin, 7)
    seam.rewrite(f"/v1/logs/{talks.room_id}/checkpoint", lambda _: fork.encode(), when=newest_only)
    async with behind(talks.auditor, seam) as lied_to:
        with pytest.raises(WitnessProofError, match="forked or rewritten"):
            await witness_once(lied_to, witness, talks.room_id)
    followed = witness.latest(origin)
    assert followed is not None
    assert followed.size == 6


@sqlite_only
async def test_a_witness_refuses_a_bad_consistency_proof(
    app: FastAPI, talks: Talks, witness: Witness
) -> None:
    await talks.alice.send(talks.room_id, "Seven.")

    def corrupt(body: bytes) -> bytes:
        answer = json.loads(body)
        answer["proof"][0] = "A" * 43
        return json.dumps(answer).encode()

    seam = Rewriter(app)
    seam.rewrite(f"/v1/logs/{talks.room_id}/proof/consistency", corrupt)
    async with behind(talks.auditor, seam) as lied_to:
        with pytest.raises(WitnessProofError) as caught:
            await witness_once(lied_to, witness, talks.room_id)
    assert caught.value.status == 422


@sqlite_only
async def test_a_witness_refuses_a_second_root_for_a_cosigned_size(
    app: FastAPI, settings: Settings, talks: Talks, witness: Witness
) -> None:
    origin = (await talks.auditor.logs.identity(talks.room_id)).origin
    seam = Rewriter(app)
    fork = forged(settings, origin, 6)
    seam.rewrite(f"/v1/logs/{talks.room_id}/checkpoint", lambda _: fork.encode(), when=newest_only)
    async with behind(talks.auditor, seam) as lied_to:
        with pytest.raises(WitnessProofError, match="forked") as caught:
            await witness_once(lied_to, witness, talks.room_id)
    assert caught.value.status == 422


@sqlite_only
async def test_a_witness_refuses_a_rolled_back_log(
    app: FastAPI, talks: Talks, witness: Witness
) -> None:
    seam = Rewriter(app)
    async with behind(talks.auditor, seam) as lied_to:
        older = await fetch_checkpoint(lied_to, talks.room_id, 4)
        seam.rewrite(
            f"/v1/logs/{talks.room_id}/checkpoint", lambda _: older.encode(), when=newest_only
        )
        with pytest.raises(WitnessRequestError, match="rolled back"):
            await witness_once(lied_to, witness, talks.room_id)


@sqlite_only
async def test_an_audit_requires_the_witness_quorum(talks: Talks, witness: Witness) -> None:
    report = await verify_log(talks.auditor, talks.room_id, witnesses=[witness.vkey], quorum=1)
    assert report.quorum == (6, (witness.name,))
    assert report.cosignatures == {6: (witness.name,)}
    stranger = WitnessKey("stranger.test").vkey
    with pytest.raises(VerificationError, match="1 of the 2"):
        await verify_log(talks.bob, talks.room_id, witnesses=[witness.vkey, stranger])


@sqlite_only
async def test_an_audit_is_consistent_with_what_the_witness_cosigned(
    talks: Talks, witness: Witness
) -> None:
    await talks.alice.send(talks.room_id, "Later.")
    report = await verify_log(talks.auditor, talks.room_id)
    assert "the checkpoint this profile's witness cosigned (size 6)" in report.consistent_with


@sqlite_only
async def test_a_cosignature_over_another_checkpoint_fails_the_audit(
    app: FastAPI, talks: Talks, witness: Witness
) -> None:
    # The witness's name and key, but a signature over the checkpoint of size 5.
    seed = talks.auditor.keystore.witness_key()
    assert seed is not None
    older = await fetch_checkpoint(talks.auditor, talks.room_id, 5)
    misplaced = cosign(
        older.partition("\n\n")[0] + "\n",
        witness.name,
        Ed25519PrivateKey.from_private_bytes(seed),
        1_700_000_000,
    )

    def swap(body: bytes) -> bytes:
        kept = [line for line in body.decode().split("\n") if witness.name not in line]
        return ("\n".join(kept).rstrip("\n") + "\n" + misplaced).encode()

    seam = Rewriter(app)
    seam.rewrite(f"/v1/logs/{talks.room_id}/checkpoint", swap, when=newest_only)
    async with behind(talks.auditor, seam) as lied_to:
        with pytest.raises(AuditFailure, match="bad cosignature"):
            await verify_log(lied_to, talks.room_id)
