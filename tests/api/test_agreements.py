"""Agreements (docs/design.md §7) through the SDK and the API: a document proposed,
signed hash for hash by both sides and countersigned; superseded by a new version;
every bad act refused by the server with the right status and nothing written; the
audit and an offline bundle check every signature."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.audit import export_log, verify_agreement, verify_bundle, verify_log
from client_sdk.client import ParleyClient
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import new_message_id
from client_sdk.protocol.errors import (
    NotFoundError,
    NotPermitted,
    ProtocolError,
    VerificationError,
)
from client_sdk.protocol.instruments.acts import sign_act
from client_sdk.protocol.instruments.agreements import (
    AgreementProposeAct,
    AgreementSignAct,
    RequiredSigner,
)
from client_sdk.protocol.instruments.base import Act
from client_sdk.protocol.mediation import Refusal
from client_sdk.protocol.models import Side
from tests.api.factories import assert_error, nothing_written
from tests.conftest import OpenProfile
from tests.support.talks import Talks, open_talks, talks_fixtures, talks_scene

SCENE = talks_scene("agreement-talks", observer=True)
seed, talks_room = talks_fixtures(SCENE)


@pytest.fixture
async def talks(talks_room: str, open_profile: OpenProfile, tmp_path: Path) -> Talks:
    """The talks, built once per module and backend and copied for each test."""
    return open_talks(SCENE, talks_room, open_profile, tmp_path)


def _document(path: Path, size: int = 64 * 1024) -> Path:
    path.write_bytes(b"%PDF-1.7\n" + os.urandom(size))
    return path


def _sha(path: Path) -> str:
    return b64e(hashlib.sha256(path.read_bytes()).digest())


def _account(client: ParleyClient) -> str:
    return client.whoami()["account_id"]


async def test_both_sides_sign_the_exact_hash_and_the_mediator_countersigns(
    talks: Talks, tmp_path: Path
) -> None:
    text = _document(tmp_path / "phase-1.pdf", 2 * 1024 * 1024 + 17)  # a few chunks

    proposed = await talks.mona.agreements.propose(talks.room_id, text, title="Phase 1")
    assert proposed.title == "Phase 1"
    assert proposed.document_sha256 == _sha(text)
    assert proposed.document is not None
    assert proposed.document.size == text.stat().st_size
    assert [(s.side, s.account_id) for s in proposed.signers] == [
        ("a", None),
        ("b", None),
        ("mediator", None),
    ]
    assert not proposed.complete

    copy = tmp_path / "alice-copy.pdf"
    await talks.alice.agreements.sign(talks.room_id, proposed.agreement_id, output=copy)
    assert copy.read_bytes() == text.read_bytes()  # what she signed is what was proposed
    await talks.bob.agreements.sign(talks.room_id, proposed.agreement_id)
    done = await talks.mona.agreements.sign(talks.room_id, proposed.agreement_id)

    assert done.complete
    assert [(s.name, s.side, s.document_sha256) for s in done.signatures] == [
        ("Alice", "a", _sha(text)),
        ("Bob", "b", _sha(text)),
        ("Mona", "mediator", _sha(text)),
    ]
    assert [s.signature is not None for s in done.signers] == [True, True, True]
    seen_by_bob = await talks.bob.agreements.show(talks.room_id, proposed.agreement_id)
    assert seen_by_bob == done
    assert seen_by_bob.to_json()["complete"] is True
    # The proposal was acknowledged by every member who read it (receipts are automatic).
    acked = {a.name for a in await talks.mona.receipts(talks.room_id, proposed.seq)}
    assert {"Alice", "Bob"} <= acked


async def test_a_new_version_supersedes_and_no_signature_carries_over(
    talks: Talks, tmp_path: Path
) -> None:
    first = await talks.alice.agreements.propose(
        talks.room_id, _document(tmp_path / "v1.pdf"), title="Phase 1, v1"
    )
    await talks.alice.agreements.sign(talks.room_id, first.agreement_id)
    second = await talks.bob.agreements.propose(
        talks.room_id,
        _document(tmp_path / "v2.pdf"),
        title="Phase 1, v2",
        supersedes=first.agreement_id,
    )

    old = await talks.mona.agreements.show(talks.room_id, first.agreement_id)
    assert old.superseded_by == second.agreement_id
    assert [s.name for s in old.signatures] == ["Alice"]
    assert second.supersedes == first.agreement_id
    assert second.signatures == []
    with pytest.raises(NotPermitted, match="superseded") as refused:
        await talks.bob.agreements.sign(talks.room_id, first.agreement_id)
    assert refused.value.reason is Refusal.INVALID
    listed = await talks.olga.agreements.list(talks.room_id)
    assert [a.agreement_id for a in listed] == [first.agreement_id, second.agreement_id]


async def test_named_signers_are_the_only_ones(talks: Talks, tmp_path: Path) -> None:
    proposed = await talks.mona.agreements.propose(
        talks.room_id,
        _document(tmp_path / "side-letter.pdf"),
        title="Side letter",
        signers=[_account(talks.alice)],
    )
    assert [(s.side, s.name) for s in proposed.signers] == [("a", "Alice")]
    with pytest.raises(NotPermitted, match="not a required signer"):
        await talks.bob.agreements.sign(talks.room_id, proposed.agreement_id)
    done = await talks.alice.agreements.sign(talks.room_id, proposed.agreement_id)
    assert done.complete


async def test_the_sdk_refuses_before_uploading_anything(
    talks: Talks, app: FastAPI, tmp_path: Path
) -> None:
    text = _document(tmp_path / "text.pdf")
    room_id = talks.room_id
    for client in (talks.mona, talks.alice, talks.olga):
        await client.room(room_id)  # logged in
    async with nothing_written(app):
        with pytest.raises(ProtocolError, match="not a member"):
            await talks.mona.agreements.propose(room_id, text, title="T", signers=["nobody"])
        with pytest.raises(ProtocolError, match="observer"):
            await talks.mona.agreements.propose(
                room_id, text, title="T", signers=[_account(talks.olga)]
            )
        with pytest.raises(NotPermitted, match="no agreement"):
            await talks.mona.agreements.propose(room_id, text, title="T", supersedes="nope")
        with pytest.raises(NotPermitted, match="observers"):
            await talks.olga.agreements.propose(room_id, text, title="T")
        with pytest.raises(ProtocolError, match="title"):
            await talks.mona.agreements.propose(room_id, text, title="")
        with pytest.raises(ProtocolError, match="cannot read"):
            await talks.mona.agreements.propose(room_id, tmp_path / "missing.pdf", title="T")
        with pytest.raises(NotFoundError, match="no agreement"):
            await talks.alice.agreements.sign(room_id, "nope")


# --- what the server refuses ---------------------------------------------------------


async def _post(app: FastAPI, client: ParleyClient, act: Act) -> httpx.Response:
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
    room = await client.room(room_id)
    return {
        "room_id": room_id,
        "instrument_id": new_message_id(),
        "roster_version": room.roster_version,
        "signer_device": client.keystore.state.device_id,
        "issued_at": 1,
    }


async def _sign_act(
    client: ParleyClient, room_id: str, agreement_id: str, digest: str, **fields: Any
) -> AgreementSignAct:
    values = await _common(client, room_id)
    values.update(agreement_id=agreement_id, account_id=_account(client), document_sha256=digest)
    values.update(fields)
    return AgreementSignAct(**values)


async def test_the_server_refuses_every_bad_signature_and_writes_nothing(
    talks: Talks, app: FastAPI, tmp_path: Path
) -> None:
    room_id = talks.room_id
    proposed = await talks.mona.agreements.propose(
        room_id, _document(tmp_path / "text.pdf"), title="Phase 1"
    )
    agreement_id, digest = proposed.agreement_id, proposed.document_sha256
    other = b64e(bytes(32))

    cases: list[tuple[ParleyClient, AgreementSignAct, int, str, str]] = [
        (
            talks.alice,
            await _sign_act(talks.alice, room_id, agreement_id, other),
            422,
            "invalid",
            "another hash",
        ),
        (
            talks.olga,
            await _sign_act(talks.olga, room_id, agreement_id, digest),
            403,
            "forbidden",
            "not a required signer",
        ),
        (
            talks.mona,
            await _sign_act(talks.mona, room_id, agreement_id, digest),
            409,
            "conflict",
            "countersigns last",
        ),
        (
            talks.alice,
            await _sign_act(talks.alice, room_id, "no-such-agreement", digest),
            404,
            "not_found",
            "no agreement",
        ),
        (
            talks.alice,
            await _sign_act(
                talks.alice, room_id, agreement_id, digest, account_id=_account(talks.bob)
            ),
            422,
            "invalid",
            "account of the device",
        ),
    ]
    for client, act, status, code, mentions in cases:
        async with nothing_written(app):
            response = await _post(app, client, act)
        assert_error(response, status, code, mentions=mentions)

    await talks.alice.agreements.sign(room_id, agreement_id)
    async with nothing_written(app):
        again = await _post(
            app, talks.alice, await _sign_act(talks.alice, room_id, agreement_id, digest)
        )
    assert_error(again, 409, "conflict", mentions="already signed")

    await talks.bob.agreements.propose(
        room_id, _document(tmp_path / "v2.pdf"), title="Phase 1, v2", supersedes=agreement_id
    )
    async with nothing_written(app):
        late = await _post(
            app, talks.bob, await _sign_act(talks.bob, room_id, agreement_id, digest)
        )
    assert_error(late, 409, "conflict", mentions="superseded")
    shown = await talks.mona.agreements.show(room_id, agreement_id)
    assert [s.name for s in shown.signatures] == ["Alice"]


async def test_the_server_refuses_bad_proposals_and_writes_nothing(
    talks: Talks, app: FastAPI
) -> None:
    room_id = talks.room_id
    digest = b64e(hashlib.sha256(b"text").digest())

    async def proposal(client: ParleyClient, **fields: Any) -> AgreementProposeAct:
        values = await _common(client, room_id)
        values.update(document_sha256=digest, signers=[RequiredSigner(side=Side.A)])
        values.update(fields)
        return AgreementProposeAct(**values)

    cases: list[tuple[ParleyClient, dict[str, Any], int, str, str]] = [
        (talks.olga, {}, 403, "forbidden", "observers"),
        (talks.mona, {"supersedes": "no-such-agreement"}, 404, "not_found", "no agreement"),
        (
            talks.mona,
            {"signers": [RequiredSigner(side=Side.A, account_id=_account(talks.bob))]},
            422,
            "invalid",
            "sits on side b",
        ),
        (talks.mona, {}, 422, "invalid", "must carry its sealed part"),
    ]
    for client, fields, status, code, mentions in cases:
        act = await proposal(client, **fields)
        async with nothing_written(app):
            response = await _post(app, client, act)
        assert_error(response, status, code, mentions=mentions)


# --- the audit and the outsider's check ----------------------------------------------


async def test_the_audit_and_an_offline_bundle_check_every_signature(
    talks: Talks, tmp_path: Path
) -> None:
    text = _document(tmp_path / "phase-1.pdf")
    proposed = await talks.mona.agreements.propose(talks.room_id, text, title="Phase 1")
    for client in (talks.alice, talks.bob):
        await client.agreements.sign(talks.room_id, proposed.agreement_id)

    report = await verify_log(talks.mona, talks.room_id)
    bundle = await export_log(talks.mona, talks.room_id)
    assert verify_bundle(bundle).entries == report.entries

    pending = verify_agreement(text, bundle, log_vkey=report.log_vkey)
    assert pending.agreement.agreement_id == proposed.agreement_id
    assert not pending.complete
    assert [s.name for s in pending.agreement.signatures] == ["Alice", "Bob"]
    assert pending.log_key_pinned

    await talks.mona.agreements.sign(talks.room_id, proposed.agreement_id)
    signed = verify_agreement(text, await export_log(talks.mona, talks.room_id))
    assert signed.complete
    assert [s.name for s in signed.agreement.signatures] == ["Alice", "Bob", "Mona"]
    assert signed.agreement.title is None  # sealed: an outsider never reads it

    changed = tmp_path / "changed.pdf"
    changed.write_bytes(text.read_bytes() + b" ")
    with pytest.raises(VerificationError, match=r"no agreement .* names this file"):
        verify_agreement(changed, bundle)
