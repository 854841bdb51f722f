"""`verify_log` and `export_log` against the real app, honest and otherwise."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from client_sdk.audit import (
    AuditFailure,
    export_log,
    fetch_checkpoint,
    verify_bundle,
    verify_log,
)
from client_sdk.protocol.errors import NotFoundError
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.merkle import root_from_leaf_hashes
from client_sdk.protocol.note import Checkpoint
from server.config import Settings
from server.log.signer import CheckpointSigner
from tests.audit.conftest import (
    Rewriter,
    Talks,
    behind,
    change_leaf,
    newest_only,
    sqlite_only,
)
from tests.conftest import EnrollFactory


async def test_an_auditor_verifies_a_room_log(talks: Talks) -> None:
    report = await verify_log(talks.auditor, talks.room_id)
    assert report.entries == {"roster": 3, "message": 3}
    assert report.size == 6
    stored = talks.auditor.keystore.checkpoint(talks.room_id)
    assert stored is not None
    assert (stored.size, stored.root) == (6, report.root)


@sqlite_only
async def test_a_second_audit_is_consistent_with_the_first(talks: Talks) -> None:
    await verify_log(talks.auditor, talks.room_id)
    await talks.alice.send(talks.room_id, "Agreed.")
    report = await verify_log(talks.auditor, talks.room_id)
    assert report.consistent_with == ("the checkpoint this keystore verified before (size 6)",)
    assert report.checkpoints == (6, 7)


@sqlite_only
async def test_a_member_verifies_the_room_log(talks: Talks) -> None:
    report = await verify_log(talks.bob, talks.room_id)
    assert report.size == 6


async def test_the_directory_log_verifies(talks: Talks) -> None:
    report = await verify_log(talks.auditor, DIRECTORY_LOG_ID)
    assert report.entries == {"registration": 4, "device": 4, "encryption-key": 4}


@sqlite_only
async def test_an_outsider_cannot_audit_a_room(talks: Talks, enroll: EnrollFactory) -> None:
    outsider = await enroll(name="Olga")
    with pytest.raises(NotFoundError):
        await verify_log(outsider, talks.room_id)


async def test_a_leaf_changed_behind_the_servers_back_is_named(app: FastAPI, talks: Talks) -> None:
    await change_leaf(app, talks.room_id, 4, with_hash=False, server_time=1)
    with pytest.raises(AuditFailure) as caught:
        await verify_log(talks.auditor, talks.room_id)
    assert caught.value.index == 4
    assert str(caught.value).startswith(f"log {talks.room_id} index 4: the stored leaf hash")


async def test_a_leaf_changed_with_its_hash_is_located_by_the_signed_checkpoints(
    app: FastAPI, talks: Talks
) -> None:
    await change_leaf(app, talks.room_id, 3, with_hash=True, server_time=1)
    with pytest.raises(AuditFailure) as caught:
        await verify_log(talks.auditor, talks.room_id)
    assert caught.value.index == 3
    assert "the leaf was changed" in caught.value.reason
    assert talks.auditor.keystore.checkpoint(talks.room_id) is None  # nothing accepted


@sqlite_only
async def test_a_leaf_that_misstates_its_actor_is_named(app: FastAPI, talks: Talks) -> None:
    await change_leaf(app, talks.room_id, 5, with_hash=True, actor_device="someone-else")
    with pytest.raises(AuditFailure, match="actor_device") as caught:
        await verify_log(talks.auditor, talks.room_id)
    assert caught.value.index == 5


@sqlite_only
async def test_a_checkpoint_with_a_bad_signature_is_refused(app: FastAPI, talks: Talks) -> None:
    seam = Rewriter(app)

    def break_signature(body: bytes) -> bytes:
        text = body.decode()
        head, _, signature = text.rpartition(" ")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        return f"{head} {flipped}".encode()

    seam.rewrite(f"/v1/logs/{talks.room_id}/checkpoint", break_signature)
    async with behind(talks.auditor, seam) as lied_to:
        with pytest.raises(AuditFailure, match="checkpoint refused"):
            await verify_log(lied_to, talks.room_id)


@sqlite_only
async def test_a_forked_history_is_refused(app: FastAPI, settings: Settings, talks: Talks) -> None:
    # The operator signs, with the real log key, a checkpoint of another tree.
    signer = CheckpointSigner.load(signer_key=None, data_dir=settings.data_dir)
    origin = (await talks.auditor.logs.identity(talks.room_id)).origin
    forged = signer.sign(Checkpoint(origin, 6, root_from_leaf_hashes([bytes(32)] * 6)))
    seam = Rewriter(app)
    seam.rewrite(
        f"/v1/logs/{talks.room_id}/checkpoint", lambda _: forged.encode(), when=newest_only
    )
    async with behind(talks.auditor, seam) as lied_to:
        with pytest.raises(AuditFailure, match="signed at size 6") as caught:
            await verify_log(lied_to, talks.room_id)
    assert caught.value.index == 5


@sqlite_only
async def test_a_rolled_back_log_is_refused(app: FastAPI, talks: Talks) -> None:
    await verify_log(talks.auditor, talks.room_id)
    seam = Rewriter(app)
    async with behind(talks.auditor, seam) as lied_to:
        older = await fetch_checkpoint(lied_to, talks.room_id, 4)
        seam.rewrite(
            f"/v1/logs/{talks.room_id}/checkpoint", lambda _: older.encode(), when=newest_only
        )
        with pytest.raises(AuditFailure, match="rolled back"):
            await verify_log(lied_to, talks.room_id)


@sqlite_only
async def test_signatures_are_checked_in_a_process_pool(talks: Talks) -> None:
    report = await verify_log(talks.auditor, talks.room_id, workers=2, parallel_threshold=0)
    assert report.parallel
    assert report.size == 6


async def test_an_exported_bundle_verifies_offline(talks: Talks) -> None:
    bundle = await export_log(talks.auditor, talks.room_id)
    assert [e["index"] for e in bundle.entries] == list(range(6))
    assert set(bundle.accounts) == {talks.mediator.keystore.state.account_id}
    report = verify_bundle(bundle, log_vkey=bundle.log_vkey)
    assert report.entries == {"roster": 3, "message": 3}
