"""Signed statements about identity and membership (docs/design.md §3, §4)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from client_sdk.protocol.encoding import b64e, canonical_json, sha256
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import SigLabel, SigningKey, key_id
from client_sdk.protocol.models import Role, Side, WireModel
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Registration,
    RoomPolicy,
    Roster,
    RosterDevice,
    RosterMember,
    SignedStatement,
    device_id_for,
    key_fingerprint,
    parse_statement,
    sign_statement,
    verify_statement,
)

ISSUED_AT = 1_760_000_000_000
# Statement bodies carry public keys as opaque base64url; verification never decodes them.
ACCOUNT_PUBLIC = b64e(b"\x01" * 32)
DEVICE_PUBLIC = b64e(b"\x02" * 32)
HPKE_PUBLIC = b64e(b"\x03" * 1216)


def make_registration(
    *,
    account_id: str = "acc-alice",
    name: str = "Alice Example",
    role: Role = Role.PARTY,
    account_key: str = ACCOUNT_PUBLIC,
    issued_at: int = ISSUED_AT,
) -> Registration:
    return Registration(
        account_id=account_id, name=name, role=role, account_key=account_key, issued_at=issued_at
    )


def make_device_cert(
    *,
    account_id: str = "acc-alice",
    device_id: str = "alice-phone",
    signing_key: str = DEVICE_PUBLIC,
    issued_at: int = ISSUED_AT,
) -> DeviceCert:
    return DeviceCert(
        account_id=account_id, device_id=device_id, signing_key=signing_key, issued_at=issued_at
    )


def make_encryption_key_cert(
    *,
    account_id: str = "acc-alice",
    device_id: str = "alice-phone",
    key_id: str = "hpke-key-1",
    public_key: str = HPKE_PUBLIC,
    issued_at: int = ISSUED_AT,
    not_after: int = ISSUED_AT + 7 * 86_400_000,
) -> EncryptionKeyCert:
    return EncryptionKeyCert(
        account_id=account_id,
        device_id=device_id,
        key_id=key_id,
        public_key=public_key,
        issued_at=issued_at,
        not_after=not_after,
    )


def make_member(
    *,
    account_id: str,
    side: Side,
    devices: tuple[str, ...],
    name: str | None = None,
) -> RosterMember:
    return RosterMember(
        account_id=account_id,
        name=name or account_id,
        side=side,
        account_key=ACCOUNT_PUBLIC,
        devices=[RosterDevice(device_id=d, signing_key=DEVICE_PUBLIC) for d in devices],
    )


DEFAULT_MEMBERS = (
    make_member(account_id="acc-mediator", side=Side.MEDIATOR, devices=("mediator-laptop",)),
    make_member(account_id="acc-alice", side=Side.A, devices=("alice-phone", "alice-laptop")),
    make_member(account_id="acc-bob", side=Side.B, devices=("bob-laptop",)),
    make_member(account_id="acc-olga", side=Side.OBSERVER, devices=("olga-tablet",)),
)


def make_roster(
    *,
    room_id: str = "room-1",
    version: int = 1,
    prev_hash: str | None = None,
    title: str = "Northern crossing talks",
    members: tuple[RosterMember, ...] = DEFAULT_MEMBERS,
    signer_device: str = "mediator-laptop",
    issued_at: int = ISSUED_AT,
) -> Roster:
    return Roster(
        room_id=room_id,
        version=version,
        prev_hash=prev_hash,
        title=title,
        members=list(members),
        signer_device=signer_device,
        issued_at=issued_at,
    )


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.generate()


def signed_body(key: SigningKey, label: SigLabel, body: dict[str, Any]) -> SignedStatement:
    """A statement with `body` as given (no model in between), signed under `label`."""
    return SignedStatement(body=body, signature=b64e(key.sign(label, canonical_json(body))))


Factory = Callable[[], WireModel]
# (factory, model, label); models as `type[Any]` in tests because verify_statement's type
# variable is constrained, so a union of the four cannot be passed to it.
KINDS: list[tuple[Factory, type[Any], SigLabel]] = [
    (make_registration, Registration, SigLabel.REGISTRATION),
    (make_device_cert, DeviceCert, SigLabel.DEVICE_CERT),
    (make_encryption_key_cert, EncryptionKeyCert, SigLabel.ENCRYPTION_KEY_CERT),
    (make_roster, Roster, SigLabel.ROSTER),
]
STATEMENTS = [pytest.param(make, model, id=label.value) for make, model, label in KINDS]
FOREIGN_LABELS = [
    pytest.param(make, model, other, id=f"{own.value}-under-{other.value}")
    for make, model, own in KINDS
    for other in SigLabel
    if other != own
]
FOREIGN_TYPES = [
    pytest.param(make, other, id=f"{own.value}-as-{other.__name__}")
    for make, model, own in KINDS
    for _, other, _ in KINDS
    if other is not model
]


@pytest.mark.parametrize(("make", "model"), STATEMENTS)
def test_signed_statement_verifies_and_returns_the_statement(
    make: Factory, model: type[Any], signer: SigningKey
) -> None:
    statement = make()
    signed = sign_statement(signer, statement)

    assert verify_statement(signed, signer.public_bytes(), model) == statement


@pytest.mark.parametrize(("make", "model"), STATEMENTS)
def test_statement_survives_the_wire(make: Factory, model: type[Any], signer: SigningKey) -> None:
    signed = sign_statement(signer, make())
    received = SignedStatement.model_validate_json(signed.model_dump_json())

    assert verify_statement(received, signer.public_bytes(), model) == make()


@pytest.mark.parametrize(("make", "model"), STATEMENTS)
def test_signature_is_over_the_canonical_body_with_the_type_label(
    make: Factory, model: type[Any], signer: SigningKey
) -> None:
    statement = make()
    body = statement.model_dump(mode="json")
    signed = signed_body(signer, SigLabel(body["type"]), body)

    assert verify_statement(signed, signer.public_bytes(), model) == statement


@pytest.mark.parametrize(("make", "model", "label"), FOREIGN_LABELS)
def test_signature_under_another_label_does_not_verify(
    make: Factory, model: type[Any], label: SigLabel, signer: SigningKey
) -> None:
    """A body that parses as `model`, signed by the right key, but for another purpose."""
    body = make().model_dump(mode="json")
    signed = signed_body(signer, label, body)

    with pytest.raises(VerificationError, match="signature"):
        verify_statement(signed, signer.public_bytes(), model)


@pytest.mark.parametrize(("make", "other_model"), FOREIGN_TYPES)
def test_statement_does_not_verify_as_another_type(
    make: Factory, other_model: type[Any], signer: SigningKey
) -> None:
    signed = sign_statement(signer, make())

    with pytest.raises(VerificationError):
        verify_statement(signed, signer.public_bytes(), other_model)


def test_device_cert_body_signature_reused_as_registration_fails(signer: SigningKey) -> None:
    registration = make_registration().model_dump(mode="json")
    device_cert_signature = signed_body(signer, SigLabel.DEVICE_CERT, registration).signature
    reused = SignedStatement(body=registration, signature=device_cert_signature)

    with pytest.raises(VerificationError, match="registration signature"):
        verify_statement(reused, signer.public_bytes(), Registration)


def add_field(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        target: Any = body
        for key in path:
            target = target[key]
        target["extra"] = "smuggled"

    return mutate


@pytest.mark.parametrize(
    ("make", "model", "mutate"),
    [
        pytest.param(make_registration, Registration, add_field(()), id="registration"),
        pytest.param(make_device_cert, DeviceCert, add_field(()), id="device-cert"),
        pytest.param(
            make_encryption_key_cert, EncryptionKeyCert, add_field(()), id="encryption-key-cert"
        ),
        pytest.param(make_roster, Roster, add_field(()), id="roster"),
        pytest.param(make_roster, Roster, add_field(("members", 1)), id="roster-member"),
        pytest.param(
            make_roster, Roster, add_field(("members", 1, "devices", 0)), id="roster-device"
        ),
    ],
)
def test_unknown_field_in_a_correctly_signed_body_fails_verification(
    make: Factory,
    model: type[Any],
    mutate: Callable[[dict[str, Any]], None],
    signer: SigningKey,
) -> None:
    body = make().model_dump(mode="json")
    mutate(body)
    signed = signed_body(signer, SigLabel(body["type"]), body)

    with pytest.raises(VerificationError, match="Extra inputs"):
        verify_statement(signed, signer.public_bytes(), model)


@pytest.mark.parametrize(("make", "model"), STATEMENTS)
def test_statement_checked_against_another_key_fails(
    make: Factory, model: type[Any], signer: SigningKey, other_key: SigningKey
) -> None:
    signed = sign_statement(signer, make())

    with pytest.raises(VerificationError, match="signature"):
        verify_statement(signed, other_key.public_bytes(), model)


@pytest.mark.parametrize(("make", "model"), STATEMENTS)
def test_statement_signed_by_another_key_fails(
    make: Factory, model: type[Any], signer: SigningKey, other_key: SigningKey
) -> None:
    signed = sign_statement(other_key, make())

    with pytest.raises(VerificationError, match="signature"):
        verify_statement(signed, signer.public_bytes(), model)


def set_field(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def append_device(body: dict[str, Any]) -> None:
    body["members"][1]["devices"].append({"device_id": "eve-phone", "signing_key": DEVICE_PUBLIC})


@pytest.mark.parametrize(
    ("make", "model", "mutate"),
    [
        pytest.param(make_registration, Registration, set_field(("role",), "admin"), id="role"),
        pytest.param(
            make_registration, Registration, set_field(("account_key",), DEVICE_PUBLIC), id="key"
        ),
        pytest.param(
            make_device_cert, DeviceCert, set_field(("signing_key",), ACCOUNT_PUBLIC), id="device"
        ),
        pytest.param(
            make_encryption_key_cert,
            EncryptionKeyCert,
            set_field(("not_after",), ISSUED_AT * 2),
            id="expiry",
        ),
        pytest.param(make_roster, Roster, set_field(("version",), 2), id="roster-version"),
        pytest.param(
            make_roster, Roster, set_field(("members", 2, "side"), "a"), id="roster-member-side"
        ),
        pytest.param(make_roster, Roster, append_device, id="roster-device-added"),
    ],
)
def test_body_changed_after_signing_fails(
    make: Factory,
    model: type[Any],
    mutate: Callable[[dict[str, Any]], None],
    signer: SigningKey,
) -> None:
    signed = sign_statement(signer, make())
    body = copy.deepcopy(signed.body)
    mutate(body)
    tampered = SignedStatement(body=body, signature=signed.signature)

    with pytest.raises(VerificationError, match="signature"):
        verify_statement(tampered, signer.public_bytes(), model)


@pytest.mark.parametrize("index", [0, 63])
def test_signature_bit_flip_fails(index: int, signer: SigningKey) -> None:
    signed = sign_statement(signer, make_registration())
    signature = bytearray(signer.sign(SigLabel.REGISTRATION, canonical_json(signed.body)))
    signature[index] ^= 0x01
    tampered = SignedStatement(body=signed.body, signature=b64e(bytes(signature)))

    with pytest.raises(VerificationError, match="signature"):
        verify_statement(tampered, signer.public_bytes(), Registration)


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("", id="empty"),
        pytest.param("A" * 85, id="length-mod-4-is-1"),
        pytest.param("A" * 85 + "B", id="non-canonical-trailing-bits"),
        pytest.param(b64e(bytes(63)), id="truncated"),
    ],
)
def test_malformed_signature_fails_verification(signature: str, signer: SigningKey) -> None:
    signed = sign_statement(signer, make_registration())
    # Built unvalidated: the model refuses base64url no decoder takes (B64), and
    # verification must fail closed on its own as well.
    tampered = SignedStatement.model_construct(body=signed.body, signature=signature)

    with pytest.raises(VerificationError):
        verify_statement(tampered, signer.public_bytes(), Registration)


def test_malformed_public_key_fails_verification(signer: SigningKey) -> None:
    signed = sign_statement(signer, make_registration())

    with pytest.raises(VerificationError):
        verify_statement(signed, signer.public_bytes()[:31], Registration)


def test_parse_statement_rejects_malformed_body_with_protocol_error(signer: SigningKey) -> None:
    body = make_registration().model_dump(mode="json")
    body["issued_at"] = "1760000000000"

    with pytest.raises(ProtocolError):
        parse_statement(signed_body(signer, SigLabel.REGISTRATION, body), Registration)


def test_body_hash_is_sha256_of_the_canonical_body(signer: SigningKey) -> None:
    signed = sign_statement(signer, make_roster())
    reordered = SignedStatement(
        body=dict(reversed(signed.body.items())), signature=signed.signature
    )

    assert signed.body_hash() == reordered.body_hash() == sha256(canonical_json(signed.body))


def test_device_id_is_the_key_id_of_the_signing_key(signer: SigningKey) -> None:
    assert device_id_for(signer.public_bytes()) == key_id(signer.public_bytes())


@pytest.mark.parametrize(("make", "model"), STATEMENTS)
def test_body_without_type_fails_verification(
    make: Factory, model: type[Any], signer: SigningKey
) -> None:
    body = make().model_dump(mode="json")
    label = SigLabel(body.pop("type"))
    signed = signed_body(signer, label, body)

    with pytest.raises(VerificationError):
        verify_statement(signed, signer.public_bytes(), model)


def test_integer_beyond_json_range_fails_verification(signer: SigningKey) -> None:
    body = make_registration().model_dump(mode="json")
    body["issued_at"] = 2**60
    signed = SignedStatement(body=body, signature=b64e(bytes(64)))

    with pytest.raises(VerificationError):
        verify_statement(signed, signer.public_bytes(), Registration)


# --- roster helpers -------------------------------------------------------------------


def test_member_finds_account() -> None:
    member = make_roster().member("acc-alice")

    assert member is not None
    assert (member.account_id, member.side) == ("acc-alice", Side.A)


def test_member_of_unknown_account_is_none() -> None:
    assert make_roster().member("acc-eve") is None


@pytest.mark.parametrize(
    ("device_id", "owner"),
    [("alice-phone", "acc-alice"), ("alice-laptop", "acc-alice"), ("bob-laptop", "acc-bob")],
)
def test_device_owner_finds_the_member_holding_the_device(device_id: str, owner: str) -> None:
    member = make_roster().device_owner(device_id)

    assert member is not None
    assert member.account_id == owner


def test_device_owner_of_unknown_device_is_none() -> None:
    assert make_roster().device_owner("eve-phone") is None


@pytest.mark.parametrize(
    ("sides", "expected"),
    [
        pytest.param(
            None,
            ["alice-laptop", "alice-phone", "bob-laptop", "mediator-laptop", "olga-tablet"],
            id="all",
        ),
        pytest.param({Side.A}, ["alice-laptop", "alice-phone"], id="side-a"),
        pytest.param({Side.B}, ["bob-laptop"], id="side-b"),
        pytest.param(
            {Side.MEDIATOR, Side.A},
            ["alice-laptop", "alice-phone", "mediator-laptop"],
            id="caucus-a",
        ),
        pytest.param({Side.OBSERVER}, ["olga-tablet"], id="observer"),
        pytest.param(set(), [], id="no-sides"),
    ],
)
def test_device_ids_lists_devices_of_the_given_sides_sorted(
    sides: set[Side] | None, expected: list[str]
) -> None:
    assert make_roster().device_ids(sides) == expected


OLD_ROSTER_BODY: dict[str, Any] = {
    "type": "roster",
    "room_id": "room-1",
    "version": 1,
    "prev_hash": None,
    "title": "Northern crossing talks",
    "members": [
        {
            "account_id": "acc-mediator",
            "name": "acc-mediator",
            "side": "mediator",
            "account_key": ACCOUNT_PUBLIC,
            "devices": [{"device_id": "mediator-laptop", "signing_key": DEVICE_PUBLIC}],
        }
    ],
    "policy": {"require_verified": True, "witnesses": [], "witness_quorum": 0},
    "signer_device": "mediator-laptop",
    "issued_at": ISSUED_AT,
}
"""A roster as signed before vouching existed: no ``mediator_vouches``, no vouches."""


def test_a_roster_signed_before_vouching_verifies_and_keeps_its_canonical_bytes(
    signer: SigningKey,
) -> None:
    signed = signed_body(signer, SigLabel.ROSTER, OLD_ROSTER_BODY)

    roster = verify_statement(signed, signer.public_bytes(), Roster)

    assert not roster.policy.mediator_vouches
    assert roster.members[0].vouched_key_sha256 is None
    assert sign_statement(signer, roster).body == OLD_ROSTER_BODY  # the same bytes signed


def test_a_vouching_roster_carries_its_policy_and_vouches_through_signing(
    signer: SigningKey,
) -> None:
    fingerprint = key_fingerprint(b"\x01" * 32)
    member = make_member(account_id="acc-alice", side=Side.A, devices=("alice-phone",))
    roster = make_roster(members=(*DEFAULT_MEMBERS[:1], member)).model_copy(
        update={
            "policy": RoomPolicy(mediator_vouches=True),
            "members": [
                DEFAULT_MEMBERS[0],
                member.model_copy(update={"vouched_key_sha256": fingerprint}),
            ],
        }
    )

    signed = sign_statement(signer, roster)
    again = verify_statement(signed, signer.public_bytes(), Roster)

    assert signed.body["policy"]["mediator_vouches"] is True
    assert again.members[1].vouched_key_sha256 == fingerprint
    assert "vouched_key_sha256" not in signed.body["members"][0]
    assert fingerprint == b64e(sha256(b"\x01" * 32))


def test_a_vouch_without_the_vouching_policy_is_refused(signer: SigningKey) -> None:
    body = copy.deepcopy(OLD_ROSTER_BODY)
    body["members"][0]["vouched_key_sha256"] = key_fingerprint(b"\x01" * 32)
    signed = signed_body(signer, SigLabel.ROSTER, body)

    with pytest.raises(VerificationError, match=r"malformed Roster: .*mediator_vouches policy"):
        verify_statement(signed, signer.public_bytes(), Roster)
