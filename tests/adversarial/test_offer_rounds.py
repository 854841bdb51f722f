"""Sealed-offer rounds against a compromised party and a malicious operator (docs/design.md
§7): a reveal that does not open its commitment is shown as refused, never as the
offer, and the mediator opens the side's escrow instead; a round act the rules refuse,
logged past the server's rules, is refused by readers and named by the audit."""

from __future__ import annotations

import os

import pytest

from client_sdk.audit import AuditFailure, verify_log
from client_sdk.client.offer_models import OfferBook
from client_sdk.client.offer_store import STORE_FILENAME
from client_sdk.client.sealed_file import SealedFile
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import new_message_id
from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.instruments.acts import sign_act
from client_sdk.protocol.instruments.offers import ESCROW_CIPHERTEXT_LEN
from client_sdk.protocol.instruments.rounds import OfferCommitAct
from tests.support.attacks import Talks, account_id, device_id


def _lie_in_the_store(talks: Talks, value: str) -> None:
    """Bob's compromised device changes the offer it kept (salt and all else the same)."""
    state = talks.bob.keystore.state
    store = SealedFile(
        talks.bob.keystore.home,
        STORE_FILENAME,
        name="parley-offers",
        label=b"parley/v1/offer-store",
        model=OfferBook,
        device_id=state.device_id,
        device_key=state.device_key,
    )
    store.update(
        lambda book: OfferBook(
            offers=[
                o.model_copy(update={"opening": o.opening.model_copy(update={"value": value})})
                for o in book.offers
            ]
        )
    )


async def test_a_reveal_that_does_not_open_its_commitment_is_refused_and_escrow_replaces_it(
    talks: Talks,
) -> None:
    room_id = talks.room_id
    round_id = (await talks.mediator.offers.open_round(room_id, "Phase 1 releases?")).round_id
    await talks.alice.offers.commit(room_id, round_id, "120")
    await talks.bob.offers.commit(room_id, round_id, "90")
    await talks.alice.offers.reveal(room_id, round_id)
    _lie_in_the_store(talks, "200")

    lying = await talks.bob.offers.reveal(room_id, round_id)  # the server cannot tell

    [shown] = await talks.alice.offers.rounds(room_id)
    bob = next(o for o in shown.offers if o.side == "b")
    assert bob.value is None
    assert bob.refused is not None
    assert "does not open its commitment" in bob.refused
    events = [
        talks.alice.offers.event(m)
        async for m in talks.alice.messages(room_id, after=lying.seq - 1)
    ]
    [line] = [e for e in events if e is not None and e.act == "offer-reveal"]
    assert line.refused is not None
    assert line.value is None
    assert "200" not in line.text

    await talks.mediator.offers.close(room_id, round_id)  # no deadline: the mediator ends it
    opened = await talks.mediator.offers.open_escrow(room_id, round_id, "b")

    assert opened.value == "90"
    [after] = await talks.alice.offers.rounds(room_id)
    bob = next(o for o in after.offers if o.side == "b")
    assert (bob.value, bob.opened_from) == ("90", "escrow")
    assert bob.refused is not None  # the bad reveal stays named
    await verify_log(talks.mediator, room_id)  # the rules allowed every act


async def test_a_second_commitment_logged_past_the_rules_is_refused_and_named(
    talks: Talks,
) -> None:
    room_id = talks.room_id
    round_id = (await talks.mediator.offers.open_round(room_id, "Phase 1 releases?")).round_id
    await talks.bob.offers.commit(room_id, round_id, "90")
    second = sign_act(
        talks.bob.keystore.state.device_key,
        OfferCommitAct(
            room_id=room_id,
            instrument_id=new_message_id(),
            roster_version=(await talks.bob.room(room_id)).roster_version,
            signer_device=device_id(talks.bob),
            issued_at=1,
            round_id=round_id,
            side="b",
            account_id=account_id(talks.bob),
            commitment=b64e(os.urandom(32)),
            escrow={device_id(talks.mediator): b64e(os.urandom(ESCROW_CIPHERTEXT_LEN))},
        ),
    )
    forged_seq = await talks.operator.store_statement(room_id, "instrument", second)

    with pytest.raises(VerificationError, match=f"event {forged_seq}.*already committed"):
        await talks.alice.offers.rounds(room_id)
    with pytest.raises(AuditFailure, match="already committed") as failure:
        await verify_log(talks.mediator, room_id)
    assert failure.value.index == forged_seq - 1
