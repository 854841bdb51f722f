"""A lying key directory: the SDK encrypts only to keys the account and the roster vouch for.

The server serves accounts (GET /v1/accounts/{id}) but cannot sign for them:
devices and encryption keys are certified by the account key, every such
statement must be a leaf of the directory log, the account key is named in the
mediator-signed roster, and the SDK pins it on first sight. Several attacks
below are logged by the operator first, so that they get past the log checks
and reach the checks they are about.
"""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk import UntrustedKeyError, VerificationError
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.envelope import Envelope
from client_sdk.protocol.keys import EncryptionKey, key_id
from client_sdk.protocol.models import Side
from tests.adversarial.conftest import BehindSeam, EnrollThrough, open_room
from tests.support.attacks import (
    DAY_MS,
    Talks,
    account_id,
    device_id,
    device_json,
    impersonate,
    impostor_account,
    serve_account,
)
from tests.support.hostile import now_ms


def _account_path(account: str) -> str:
    return f"/v1/accounts/{account}"


async def test_a_certified_device_absent_from_the_roster_is_not_encrypted_to(
    talks: Talks,
) -> None:
    # Bob certifies a second device (logged, as it should be); the mediator never admits it.
    bob, bob_key = account_id(talks.bob), talks.bob.keystore.state.account_key
    unlisted = device_json(bob_key, bob)
    await talks.operator.log_device(bob_key.public_bytes(), unlisted)

    def add_device(account: dict[str, Any]) -> dict[str, Any]:
        account["devices"].append(unlisted)
        return account

    talks.server.rewrite_response("GET", _account_path(bob), add_device)

    await talks.alice.send(talks.room_id, "Our first offer.")

    [post] = talks.server.sent("POST", talks.messages_path)
    envelope = Envelope.model_validate_json(post.body)
    assert unlisted["device_id"] not in envelope.wraps
    assert envelope.header.recipients == sorted(
        device_id(c) for c in (talks.mediator, talks.alice, talks.bob)
    )


async def test_a_key_statement_missing_from_the_directory_log_is_refused(talks: Talks) -> None:
    bob = account_id(talks.bob)
    serve_account(talks.server, impostor_account(talks.bob))  # served, never logged

    with pytest.raises(VerificationError, match=f"account {bob}: .*not in the directory log"):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []
    talks.server.be_honest()
    await talks.alice.send(talks.room_id, "Our first offer.")  # nothing of the forgery was pinned


async def test_a_substituted_account_key_is_refused_because_the_roster_names_the_real_one(
    talks: Talks,
) -> None:
    bob = account_id(talks.bob)
    await impersonate(talks, talks.server, talks.bob)

    with pytest.raises(VerificationError, match=f"account {bob}: roster and directory keys differ"):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_a_verified_contacts_new_key_is_refused_until_verified_again(talks: Talks) -> None:
    alice, bob = account_id(talks.alice), account_id(talks.bob)
    await talks.alice.verify_contact(bob, await talks.bob.safety_number(alice))
    await impersonate(talks, talks.server, talks.bob)

    with pytest.raises(
        UntrustedKeyError,
        match=f"key of account {bob} changed since you verified it.*`parley verify {bob}`",
    ):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_an_unverified_contacts_key_change_is_refused_and_the_pinned_key_kept(
    talks: Talks,
) -> None:
    bob = account_id(talks.bob)
    await talks.alice.send(talks.room_id, "Our first offer.")  # pins Bob's key on first sight
    real_key = talks.bob.keystore.state.account_key.public_bytes()
    impostor = await impersonate(talks, talks.server, talks.bob)
    new_key = b64d(impostor["account_key"])

    with pytest.raises(
        UntrustedKeyError,
        match=(
            f"key of account {bob} changed \\(pinned {key_id(real_key)}, now {key_id(new_key)}\\)"
            f".*`parley verify {bob}`"
        ),
    ):
        await talks.alice.send(talks.room_id, "Our second offer.")
    assert len(talks.server.sent("POST", talks.messages_path)) == 1
    assert talks.alice.keystore.state.pins[bob].account_key == real_key


async def test_a_mediator_does_not_sign_a_changed_key_into_a_roster(
    talks: Talks, enroll_through: EnrollThrough, behind_seam: BehindSeam
) -> None:
    carol = await enroll_through(name="Carol")
    await talks.mediator.account(account_id(carol))  # Mona has seen Carol's real key
    mediator, server = behind_seam(talks.mediator)
    await impersonate(talks, server, carol)

    with pytest.raises(UntrustedKeyError, match=f"key of account {account_id(carol)} changed"):
        await mediator.add_member(talks.room_id, account_id(carol), Side.B)
    assert server.sent("POST", f"/v1/rooms/{talks.room_id}/rosters") == []


async def test_an_expired_encryption_key_is_not_encrypted_to(talks: Talks) -> None:
    # An old certificate Bob really signed (and the directory logged) is served as current.
    bob, bob_key = account_id(talks.bob), talks.bob.keystore.state.account_key
    issued = now_ms() - 10 * DAY_MS
    old = device_json(
        bob_key,
        bob,
        device_key=talks.bob.keystore.state.device_key,
        issued_at=issued,
        not_after=issued + 7 * DAY_MS,
    )
    await talks.operator.log_device(bob_key.public_bytes(), old)

    def serve_expired_key(account: dict[str, Any]) -> dict[str, Any]:
        account["devices"][0]["encryption_key"] = old["encryption_key"]
        return account

    talks.server.rewrite_response("GET", _account_path(bob), serve_expired_key)

    with pytest.raises(
        VerificationError,
        match=f"device {device_id(talks.bob)} of {bob} has no valid encryption key",
    ):
        await talks.alice.send(talks.room_id, "Our first offer.")
    assert talks.server.sent("POST", talks.messages_path) == []


async def test_the_unsigned_public_key_field_is_ignored(talks: Talks) -> None:
    bob = account_id(talks.bob)
    servers_key = EncryptionKey.generate().public_bytes()

    def swap_public_key(account: dict[str, Any]) -> dict[str, Any]:
        account["devices"][0]["encryption_key"]["public_key"] = b64e(servers_key)
        return account

    talks.server.rewrite_response("GET", _account_path(bob), swap_public_key)

    await talks.alice.send(talks.room_id, "Our first offer.")

    # Had Alice sealed Bob's wrap to the server's key, Bob could not open it.
    assert [m.text async for m in talks.bob.messages(talks.room_id)] == ["Our first offer."]


async def test_a_safety_number_does_not_verify_a_key_the_server_substituted(
    talks: Talks,
) -> None:
    alice, bob = account_id(talks.alice), account_id(talks.bob)
    number_bob_reads_out = await talks.bob.safety_number(alice)
    await impersonate(talks, talks.server, talks.bob)

    with pytest.raises(VerificationError, match="safety number does not match"):
        await talks.alice.verify_contact(bob, number_bob_reads_out)
    assert not talks.alice.is_verified(bob)


async def test_fingerprint_after_a_key_substitution_names_the_pinned_and_the_substituted_key(
    talks: Talks,
) -> None:
    alice, bob = account_id(talks.alice), account_id(talks.bob)
    await talks.alice.send(talks.room_id, "Our first offer.")  # pins Bob's key on first sight
    before = await talks.alice.fingerprint(bob)
    real_number = await talks.bob.safety_number(alice)
    impostor = await impersonate(talks, talks.server, talks.bob)

    after = await talks.alice.fingerprint(bob)

    assert (before.matches_pinned, before.safety_number) == (True, real_number)
    assert after.matches_pinned is False
    assert after.pinned_safety_number == real_number
    assert after.safety_number != real_number
    assert after.key_id == key_id(b64d(impostor["account_key"]))
    assert after.pinned_key_id == before.key_id
    assert not after.verified


async def test_fingerprint_of_a_verified_contact_whose_key_was_substituted_is_not_verified(
    talks: Talks,
) -> None:
    alice, bob = account_id(talks.alice), account_id(talks.bob)
    await talks.alice.verify_contact(bob, await talks.bob.safety_number(alice))
    assert (await talks.alice.fingerprint(bob)).verified
    await impersonate(talks, talks.server, talks.bob)

    after = await talks.alice.fingerprint(bob)

    assert (after.matches_pinned, after.verified) == (False, False)
    assert after.pinned_safety_number == await talks.bob.safety_number(alice)


async def test_a_room_requiring_verification_refuses_an_unverified_recipient_by_name(
    talks: Talks,
) -> None:
    alice, bob, mona = (account_id(c) for c in (talks.alice, talks.bob, talks.mediator))
    room = await open_room(talks.mediator, a=[talks.alice], b=[talks.bob], require_verified=True)
    await talks.alice.verify_contact(mona, await talks.mediator.safety_number(alice))

    with pytest.raises(
        UntrustedKeyError, match=f"account {bob} is not verified.*`parley verify {bob}`"
    ):
        await talks.alice.send(room, "Our first offer.")
    assert talks.server.sent("POST", f"/v1/rooms/{room}/messages") == []


async def test_a_room_requiring_verification_accepts_once_every_recipient_is_verified(
    talks: Talks,
) -> None:
    alice, bob, mona = (account_id(c) for c in (talks.alice, talks.bob, talks.mediator))
    room = await open_room(talks.mediator, a=[talks.alice], b=[talks.bob], require_verified=True)
    await talks.alice.verify_contact(mona, await talks.mediator.safety_number(alice))
    await talks.alice.verify_contact(bob, await talks.bob.safety_number(alice))

    await talks.alice.send(room, "Our first offer.")

    assert [m.text async for m in talks.bob.messages(room)] == ["Our first offer."]
