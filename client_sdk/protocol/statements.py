"""Signed statements about identity and membership (docs/design.md §3, §4).

A statement is a JSON object with a ``type``; it travels as
``{"body": {...}, "signature": b64}``, the signature being over the RFC 8785
canonical bytes of ``body`` with the label of its type. Who signs what:

- ``registration``: the account key, over itself (binds id, name, role, key);
- ``device-cert``: the account key, over a device's signing key;
- ``encryption-key-cert``: the account key, over a device's HPKE key, with expiry;
- ``revocation``: the account key (``authority: account``), or the server's log
  key for an operator's revocation (``authority: operator``), over the end of a
  device (or, operator only, of a whole account);
- ``roster``: a mediator's device key, over a room's membership at one version;
- ``moderation``: a mediator's device key, over one act on a room (mode, caucus,
  mute, lock, close, auditor grant).

`verify_statement` parses the body strictly into its model and checks the
signature; it returns the model or raises `VerificationError`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StringConstraints,
    ValidationError,
    model_serializer,
    model_validator,
)

from client_sdk.protocol.encoding import b64d, b64e, canonical_json, sha256
from client_sdk.protocol.enums import Action as Action
from client_sdk.protocol.enums import Mode as Mode
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import SigLabel, SigningKey, key_id, verify_signature
from client_sdk.protocol.models import B64, Ident, Int, Name, Role, Side, WireModel

MAX_ROSTER_MEMBERS = 256
MAX_DEVICES_PER_MEMBER = 16


class Registration(WireModel):
    """An account's self-signed binding of its id, name and role to its account key."""

    type: Literal["registration"] = "registration"
    account_id: Ident
    name: Name
    role: Role
    account_key: B64
    issued_at: Int


class DeviceCert(WireModel):
    """The account key certifying one device's signing key; ``device_id`` is its key id."""

    type: Literal["device-cert"] = "device-cert"
    account_id: Ident
    device_id: Ident
    signing_key: B64
    issued_at: Int


class EncryptionKeyCert(WireModel):
    """The account key certifying a device's current HPKE key until ``not_after``."""

    type: Literal["encryption-key-cert"] = "encryption-key-cert"
    account_id: Ident
    device_id: Ident
    key_id: Ident
    public_key: B64
    issued_at: Int
    not_after: Int


class Revocation(WireModel):
    """The end of a device (or, by the operator, of every device of an account).

    Signed by the account key when ``authority`` is ``account``; by the server's
    log key (the key of the directory log's checkpoints) when it is ``operator``.
    ``device_id`` is None only for an operator's revocation of the whole account.
    """

    type: Literal["revocation"] = "revocation"
    account_id: Ident
    device_id: Ident | None
    authority: Literal["account", "operator"]
    reason: Annotated[str, StringConstraints(max_length=200)] = ""
    issued_at: Int

    @model_validator(mode="after")
    def _whole_account_by_operator_only(self) -> Revocation:
        if self.device_id is None and self.authority != "operator":
            raise ValueError("only the operator revokes a whole account")
        return self


class RosterDevice(WireModel):
    """A device of a roster member, named by id and signing key."""

    device_id: Ident
    signing_key: B64


def key_fingerprint(account_key: bytes) -> str:
    """What a mediator's vouch names: the SHA-256 of an account key, base64url."""
    return b64e(sha256(account_key))


def _omit(handler: SerializerFunctionWrapHandler, model: BaseModel, absent: dict[str, Any]) -> Any:
    """`model` dumped without the fields that hold their `absent` value: a field added to
    a signed model after rosters were signed stays out of their canonical JSON."""
    dumped = handler(model)
    for name, value in absent.items():
        if dumped.get(name, value) == value:
            dumped.pop(name, None)
    return dumped


class RosterMember(WireModel):
    """One account in a room, its side and the devices that may read for it.

    ``vouched_key_sha256`` (rooms whose policy has ``mediator_vouches``) is the
    roster signer's vouch: the `key_fingerprint` of the account key it verified
    by safety number before it signed (docs/design.md §3, "Vouching").
    """

    account_id: Ident
    name: Name
    side: Side
    account_key: B64
    devices: list[RosterDevice] = Field(min_length=1, max_length=MAX_DEVICES_PER_MEMBER)
    vouched_key_sha256: B64 | None = None

    @model_serializer(mode="wrap")
    def _without_absent_vouch(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _omit(handler, self, {"vouched_key_sha256": None})

    def signing_key_of(self, device_id: str) -> str:
        """The listed signing key (base64url) of one of this member's devices."""
        return next(d.signing_key for d in self.devices if d.device_id == device_id)


class RoomPolicy(WireModel):
    """Rules every member's client enforces, signed with the roster so the server
    cannot change them: encrypt only to verified accounts; treat a checkpoint as
    final only when `witness_quorum` of the `witnesses` (C2SP type 0x04 verifier
    keys) cosigned it; take the mediator's word for the members it verified
    (`mediator_vouches`, written only when set, so rosters signed before it
    existed keep their canonical JSON)."""

    require_verified: StrictBool = False
    witnesses: list[Annotated[str, StringConstraints(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=32
    )
    witness_quorum: Int = Field(default=0, ge=0, le=32)
    mediator_vouches: StrictBool = False
    """Members accept the roster signer's vouches (``vouched_key_sha256``) for the
    members it verified, if they verified that mediator themselves."""

    @model_serializer(mode="wrap")
    def _without_default_vouching(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _omit(handler, self, {"mediator_vouches": False})

    @model_validator(mode="after")
    def _quorum_reachable(self) -> RoomPolicy:
        if self.witness_quorum > len(self.witnesses):
            raise ValueError("witness_quorum is larger than the number of witnesses")
        if len(set(self.witnesses)) != len(self.witnesses):
            raise ValueError("a witness is listed twice")
        return self


class Roster(WireModel):
    """A room's membership and policy at one version, signed by a mediator's device."""

    type: Literal["roster"] = "roster"
    room_id: Ident
    version: Int = Field(ge=1)
    prev_hash: B64 | None
    title: Name
    members: list[RosterMember] = Field(min_length=1, max_length=MAX_ROSTER_MEMBERS)
    policy: RoomPolicy = Field(default_factory=RoomPolicy)
    signer_device: Ident
    issued_at: Int

    @model_validator(mode="after")
    def _vouches_need_the_policy(self) -> Roster:
        if not self.policy.mediator_vouches and any(m.vouched_key_sha256 for m in self.members):
            raise ValueError("a roster vouches for members only under the mediator_vouches policy")
        return self

    def member(self, account_id: str) -> RosterMember | None:
        """The member with this account id, if any."""
        return next((m for m in self.members if m.account_id == account_id), None)

    def device_owner(self, device_id: str) -> RosterMember | None:
        """The member one of whose devices has this id, if any."""
        for member in self.members:
            if any(d.device_id == device_id for d in member.devices):
                return member
        return None

    def device_ids(self, sides: set[Side] | None = None) -> list[str]:
        """Sorted ids of every device of members on `sides` (all sides when None)."""
        return sorted(
            d.device_id for m in self.members if sides is None or m.side in sides for d in m.devices
        )


_NEEDS: dict[Action, set[str]] = {
    Action.SET_MODE: {"mode"},
    Action.OPEN_CAUCUS: {"side"},
    Action.CLOSE_CAUCUS: {"side"},
    Action.MUTE: {"account_id"},
    Action.UNMUTE: {"account_id"},
    Action.LOCK: set(),
    Action.UNLOCK: set(),
    Action.CLOSE: set(),
    Action.GRANT_AUDITOR: {"account_id"},
}


class Moderation(WireModel):
    """A mediator's act on a room, signed by its device (label ``moderation``)."""

    type: Literal["moderation"] = "moderation"
    room_id: Ident
    moderation_id: Ident
    action: Action
    mode: Mode | None = None
    side: Literal["a", "b"] | None = None
    account_id: Ident | None = None
    roster_version: Int = Field(ge=1)
    signer_device: Ident
    issued_at: Int

    @model_validator(mode="after")
    def _fields_fit_the_action(self) -> Moderation:
        given = {name for name in ("mode", "side", "account_id") if getattr(self, name) is not None}
        if given != _NEEDS[self.action]:
            needed = ", ".join(sorted(_NEEDS[self.action])) or "nothing more"
            raise ValueError(f"action {self.action.value} takes {needed}")
        return self


class SignedStatement(WireModel):
    """A statement body as received, with the signature over its canonical bytes."""

    body: dict[str, Any]
    signature: B64

    def body_hash(self) -> bytes:
        """SHA-256 of the canonical body: how rosters chain and leaves commit."""
        return sha256(canonical_json(self.body))


_LABELS: dict[type[WireModel], SigLabel] = {
    Registration: SigLabel.REGISTRATION,
    DeviceCert: SigLabel.DEVICE_CERT,
    EncryptionKeyCert: SigLabel.ENCRYPTION_KEY_CERT,
    Roster: SigLabel.ROSTER,
    Moderation: SigLabel.MODERATION,
    Revocation: SigLabel.REVOCATION,
}

StatementT = TypeVar(
    "StatementT", Registration, DeviceCert, EncryptionKeyCert, Roster, Moderation, Revocation
)


def sign_statement(key: SigningKey, statement: WireModel) -> SignedStatement:
    """Sign `statement` with `key` under the label of its type."""
    body = statement.model_dump(mode="json")
    signature = key.sign(_LABELS[type(statement)], canonical_json(body))
    return SignedStatement(body=body, signature=b64e(signature))


def parse_statement(signed: SignedStatement, model: type[StatementT]) -> StatementT:
    """Parse the body strictly into `model` without checking the signature."""
    if "type" not in signed.body:
        raise ProtocolError(f"malformed {model.__name__}: the body has no type")
    try:
        return model.model_validate(signed.body)
    except ValidationError as exc:
        raise ProtocolError(f"malformed {model.__name__}: {exc.errors()[0]['msg']}") from exc


def verify_statement(
    signed: SignedStatement, public_key: bytes, model: type[StatementT]
) -> StatementT:
    """Parse the body into `model` and check its signature by `public_key`.

    Raises `VerificationError` (a malformed body counts as a failed check).
    """
    try:
        statement = parse_statement(signed, model)
        signature = b64d(signed.signature)
        data = canonical_json(signed.body)
    except ProtocolError as exc:
        raise VerificationError(str(exc)) from exc
    verify_signature(public_key, _LABELS[model], data, signature)
    return statement


def login_payload(device_id: str, nonce: str) -> bytes:
    """What a device signs (label ``login``) to answer a login challenge."""
    return canonical_json({"type": "login", "device_id": device_id, "nonce": nonce})


def device_id_for(signing_key: bytes) -> str:
    """A device's id: the key id of its Ed25519 signing key."""
    return key_id(signing_key)
