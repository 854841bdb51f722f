"""Agreements against a malicious operator or proposer (docs/design.md §7): a
countersignature or a signature over another hash logged past the server's rules is
refused by every reader and named by the audit; a proposal whose document is not the
one its hash names is never signed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from client_sdk.audit import (
    AuditFailure,
    export_log,
    export_tiled,
    read_bundle,
    verify_agreement,
    verify_bundle,
    verify_log,
)
from client_sdk.client import ParleyClient
from client_sdk.client.uploads import create_upload, upload_document
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import new_content_key, new_message_id
from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.instruments.acts import sign_act
from client_sdk.protocol.instruments.agreements import (
    AgreementContent,
    AgreementProposeAct,
    AgreementSignAct,
    default_signers,
)
from client_sdk.protocol.mediation import PLENARY
from client_sdk.protocol.statements import SignedStatement
from tests.support.attacks import Talks, account_id, device_id


def _document(path: Path) -> Path:
    path.write_bytes(b"%PDF-1.7\n" + os.urandom(32 * 1024))
    return path


async def _signature(
    client: ParleyClient, room_id: str, agreement_id: str, digest: str
) -> SignedStatement:
    """`client`'s device signs an agreement-sign act, whatever the rules will say."""
    return sign_act(
        client.keystore.state.device_key,
        AgreementSignAct(
            room_id=room_id,
            instrument_id=new_message_id(),
            roster_version=(await client.room(room_id)).roster_version,
            signer_device=device_id(client),
            issued_at=1,
            agreement_id=agreement_id,
            account_id=account_id(client),
            document_sha256=digest,
        ),
    )


async def _read(client: ParleyClient, room_id: str) -> list[int]:
    return [m.seq async for m in client.messages(room_id)]


async def test_a_countersignature_logged_before_the_sides_signed_is_refused(
    talks: Talks, tmp_path: Path
) -> None:
    text = _document(tmp_path / "phase-1.pdf")
    proposed = await talks.mediator.agreements.propose(talks.room_id, text, title="Phase 1")
    early = await _signature(
        talks.mediator, talks.room_id, proposed.agreement_id, proposed.document_sha256
    )
    # The server would refuse it (409); a malicious operator logs it anyway.
    forged_seq = await talks.operator.store_statement(talks.room_id, "instrument", early)

    with pytest.raises(VerificationError, match=f"event {forged_seq}.*countersigns last"):
        await _read(talks.bob, talks.room_id)
    with pytest.raises(VerificationError, match="countersigns last"):
        await talks.bob.agreements.show(talks.room_id, proposed.agreement_id)
    with pytest.raises(AuditFailure, match="countersigns last") as failure:
        await verify_log(talks.mediator, talks.room_id)
    assert failure.value.index == forged_seq - 1
    # Offline too: the bundle's audit names it, so the outsider's check fails with it.
    bundle = await export_log(talks.mediator, talks.room_id)
    with pytest.raises(AuditFailure, match="countersigns last"):
        verify_bundle(bundle)
    with pytest.raises(AuditFailure, match="countersigns last"):
        verify_agreement(text, bundle)
    tiled = text.with_name("room.parley-bundle")  # and in the tiled format
    with tiled.open("wb") as out:
        await export_tiled(talks.mediator, talks.room_id, out)
    with pytest.raises(AuditFailure, match="countersigns last") as offline:
        verify_agreement(text, read_bundle(tiled))
    assert offline.value.index == forged_seq - 1


async def test_a_signature_over_another_hash_is_refused(talks: Talks, tmp_path: Path) -> None:
    proposed = await talks.mediator.agreements.propose(
        talks.room_id, _document(tmp_path / "phase-1.pdf"), title="Phase 1"
    )
    other = b64e(hashlib.sha256(b"the text Bob wishes he had signed").digest())
    lying = await _signature(talks.bob, talks.room_id, proposed.agreement_id, other)
    forged_seq = await talks.operator.store_statement(talks.room_id, "instrument", lying)

    with pytest.raises(VerificationError, match=f"event {forged_seq}.*another hash"):
        await _read(talks.alice, talks.room_id)
    with pytest.raises(AuditFailure, match="another hash") as failure:
        await verify_log(talks.mediator, talks.room_id)
    assert failure.value.index == forged_seq - 1


async def test_a_proposal_whose_document_is_not_its_hash_is_never_signed(
    talks: Talks, tmp_path: Path
) -> None:
    # Mona's device names the hash of one text and attaches another: the server cannot
    # tell; Bob's SDK opens the document and refuses to sign it.
    shown = _document(tmp_path / "shown.pdf")
    attached = _document(tmp_path / "attached.pdf")
    mona = talks.mediator
    key = new_content_key()
    upload = await create_upload(mona.http, talks.room_id, attached.stat().st_size, 1 << 20)
    document = await upload_document(
        mona.http,
        attached,
        upload,
        content_key=key,
        file_id=new_message_id(),
        name="phase-1.pdf",
        media_type="application/pdf",
    )
    content = AgreementContent(title="Phase 1", document=document)
    roster, _ = await mona._chains.current(talks.room_id)
    act, _ = await mona._acts.submit(
        talks.room_id,
        lambda **common: AgreementProposeAct(
            document_sha256=b64e(hashlib.sha256(shown.read_bytes()).digest()),
            signers=default_signers(roster),
            **common,
        ),
        sealed=(PLENARY, content.model_dump(mode="json")),
        content_key=key,
    )

    with pytest.raises(VerificationError, match="not the one its hash names"):
        await talks.bob.agreements.sign(talks.room_id, act.instrument_id)
    shown_to_bob = await talks.bob.agreements.show(talks.room_id, act.instrument_id)
    assert shown_to_bob.signatures == []
