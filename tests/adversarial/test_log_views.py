"""A server that shows the victim a rolled-back, forked or re-signed log is caught.

The operator holds the log key, so it can sign any tree head it likes; what it
cannot do is make two different histories consistent with each other. The
victim's SDK keeps the newest checkpoint it verified (in the keystore, across
runs) and checks every new one against it.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from client_sdk import VerificationError
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.note import Checkpoint
from server.log.signer import CheckpointSigner
from tests.conftest import reopen
from tests.support.attacks import Talks


def _server_signer(app: FastAPI) -> CheckpointSigner:
    signer: CheckpointSigner = app.state.services.logs.signer
    return signer


async def _newest(talks: Talks) -> Checkpoint:
    """Alice sends and reads, and so verifies a checkpoint; return it."""
    await talks.alice.send(talks.room_id, "an offer")
    [_ async for _ in talks.alice.messages(talks.room_id)]
    stored = talks.alice.keystore.checkpoint(talks.room_id)
    assert stored is not None
    origin = (await talks.alice.logs.identity(talks.room_id)).origin
    return Checkpoint(origin, stored.size, stored.root)


def _with_checkpoint(note: str) -> Any:
    def edit(page: dict[str, Any]) -> dict[str, Any]:
        return {**page, "checkpoint": note, "consistency_proof": [], "since": page["since"]}

    return edit


async def test_two_roots_for_one_size_are_refused(app: FastAPI, talks: Talks) -> None:
    seen = await _newest(talks)
    twin = Checkpoint(seen.origin, seen.size, bytes(32))
    talks.server.rewrite_response(
        "GET", talks.events_path, _with_checkpoint(_server_signer(app).sign(twin))
    )

    with pytest.raises(VerificationError, match="forked"):
        [_ async for _ in talks.alice.messages(talks.room_id)]


async def test_a_rolled_back_log_is_refused_even_by_a_reopened_profile(
    app: FastAPI, talks: Talks
) -> None:
    seen = await _newest(talks)
    older = Checkpoint(seen.origin, seen.size - 1, bytes(32))
    talks.server.rewrite_response(
        "GET", talks.events_path, _with_checkpoint(_server_signer(app).sign(older))
    )
    stored = reopen(talks.alice).checkpoint(talks.room_id)

    with pytest.raises(VerificationError, match="not consistent"):
        [_ async for _ in talks.alice.messages(talks.room_id)]
    assert stored is not None
    assert stored.size == seen.size


async def test_a_checkpoint_signed_by_another_key_is_refused(talks: Talks) -> None:
    seen = await _newest(talks)
    impostor = CheckpointSigner(Ed25519PrivateKey.generate())
    talks.server.rewrite_response("GET", talks.events_path, _with_checkpoint(impostor.sign(seen)))

    with pytest.raises(VerificationError, match="checkpoint refused"):
        [_ async for _ in talks.alice.messages(talks.room_id)]


async def test_a_changed_log_key_is_refused(talks: Talks) -> None:
    await _newest(talks)
    talks.alice.logs._identities.clear()  # a new process: the key is read again
    other = CheckpointSigner(Ed25519PrivateKey.generate())
    talks.server.rewrite_response(
        "GET",
        f"/v1/logs/{talks.room_id}",
        lambda info: {**info, "vkey": other.vkey(info["origin"])},
    )

    with pytest.raises(VerificationError, match="log key changed"):
        [_ async for _ in talks.alice.messages(talks.room_id)]


async def test_a_receipt_with_a_forked_checkpoint_is_refused(app: FastAPI, talks: Talks) -> None:
    seen = await _newest(talks)
    fork = _server_signer(app).sign(Checkpoint(seen.origin, seen.size + 1, bytes(32)))

    def forge(receipt: dict[str, Any]) -> dict[str, Any]:
        return {**receipt, "checkpoint": fork, "inclusion_proof": [b64e(bytes(32))]}

    talks.server.rewrite_response("POST", talks.messages_path, forge)

    with pytest.raises(VerificationError):
        await talks.alice.send(talks.room_id, "a second offer")
