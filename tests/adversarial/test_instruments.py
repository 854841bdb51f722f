"""A server that logs instrument acts the rules refuse (docs/design.md §7): a replayed
receipt, a receipt naming the wrong leaf. Members' SDKs refuse the room's events and
the audit names the act."""

from __future__ import annotations

import pytest

from client_sdk.audit import AuditFailure, verify_log
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import new_message_id
from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.instruments.acts import sign_act
from client_sdk.protocol.instruments.receipts import ReceiptAct
from tests.support.attacks import Talks, account_id, device_id


async def _messages(talks: Talks) -> list[int]:
    return [m.seq async for m in talks.alice.messages(talks.room_id)]


async def test_a_receipt_logged_twice_is_refused_by_readers_and_the_audit(talks: Talks) -> None:
    sent = await talks.mediator.send(talks.room_id, "proposal")
    first = await talks.bob.acknowledge(talks.room_id, sent.seq)
    entries = await talks.bob.http.request(
        "GET", f"/v1/logs/{talks.room_id}/entries", params={"start": sent.seq - 1, "end": sent.seq}
    )
    replayed = sign_act(
        talks.bob.keystore.state.device_key,
        ReceiptAct(
            room_id=talks.room_id,
            instrument_id=new_message_id(),
            roster_version=(await talks.bob.room(talks.room_id)).roster_version,
            signer_device=device_id(talks.bob),
            issued_at=1,
            seq=sent.seq,
            leaf_sha256=entries["entries"][0]["leaf_hash"],
            account_id=account_id(talks.bob),
        ),
    )
    # A (compromised) device's second receipt, logged past the server's rules.
    forged_seq = await talks.operator.store_statement(talks.room_id, "instrument", replayed)

    with pytest.raises(VerificationError, match=f"event {forged_seq}.*already acknowledged"):
        await _messages(talks)
    with pytest.raises(AuditFailure, match="already acknowledged") as failure:
        await verify_log(talks.mediator, talks.room_id)
    assert failure.value.index == forged_seq - 1
    assert first.receipt_seq < forged_seq


async def test_a_receipt_naming_another_leaf_is_refused(talks: Talks) -> None:
    sent = await talks.mediator.send(talks.room_id, "proposal")
    lying = sign_act(
        talks.bob.keystore.state.device_key,
        ReceiptAct(
            room_id=talks.room_id,
            instrument_id=new_message_id(),
            roster_version=(await talks.bob.room(talks.room_id)).roster_version,
            signer_device=device_id(talks.bob),
            issued_at=1,
            seq=sent.seq,
            leaf_sha256=b64e(bytes(32)),
            account_id=account_id(talks.bob),
        ),
    )
    forged_seq = await talks.operator.store_statement(talks.room_id, "instrument", lying)

    with pytest.raises(VerificationError, match=f"event {forged_seq}.*leaf hash"):
        await _messages(talks)
    with pytest.raises(AuditFailure, match="leaf hash") as failure:
        await verify_log(talks.mediator, talks.room_id)
    assert failure.value.index == forged_seq - 1
