"""Reading the state of older keystores into today's `KeystoreState`.

Version 3 -> 4 (several server URLs). Up to version 3 a profile held one
server URL, ``server``; version 4 holds ``servers``, the URLs of one
deployment's replicas in order of preference. The one URL becomes the only
entry: an old profile works as before, and `parley config servers` adds more.
A version-3 reader would refuse the new field, hence the new number.

Version 2 -> 3 (X-Wing keys as seeds). Version 3 stores a new encryption key
as the 32-byte X-Wing seed the draft defines; a version-2 file holds each key
as its two parts, ML-KEM-768's ``d || z`` and an X25519 key, drawn
independently. No seed expands to those (it would take a SHAKE256 preimage),
so they cannot be rewritten as seeds. They are kept as they are, as legacy
keys (`client_sdk.protocol.keys.EncryptionKey.legacy`): a version-2 state
reads unchanged, every old key still opens what was sealed to it, and the
client replaces a legacy current key with a seed key at its next key check
(`client_sdk.client.keys.KeyRotation.maintain`), after which the legacy key
is retired and deleted a week later like any other. New keys are always seeds.

Version 1 -> 2.
Version 1 kept the trust anchors in a free-form ``extra`` object:
``log_keys`` (log id -> verifier key), ``roster_heads`` (room id ->
``[version, body hash]``) and ``witness_key`` (a base64url seed). Each
becomes its typed field; anything else in ``extra`` is refused rather than
dropped, so nothing a user's trust rests on is lost without a word. The
`Keystore` writes the migrated state back, as the current version, under its lock.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool, StrictInt, StrictStr, ValidationError

from client_sdk.keystore.models import KeystoreState
from client_sdk.protocol.errors import KeystoreError
from client_sdk.protocol.models import B64, Int, Role, WireModel

__all__ = ["state_from_v1", "state_from_v3"]


class _V1EncryptionKey(WireModel):
    key_id: str
    private: B64
    public: B64
    created_at: Int
    not_after: Int
    retired_at: Int | None


class _V1Pin(WireModel):
    account_key: B64
    first_seen: Int
    verified: StrictBool
    verified_key: B64 | None
    pending_key: B64 | None


class _V1Checkpoint(WireModel):
    size: Int
    root: B64
    note: str


class _V1Extra(WireModel):
    log_keys: dict[str, StrictStr] = Field(default_factory=dict)
    roster_heads: dict[str, tuple[StrictInt, B64]] = Field(default_factory=dict)
    witness_key: B64 | None = None


class _V1State(WireModel):
    server: str
    account_id: str
    device_id: str
    role: Role
    name: str
    account_key: B64
    device_key: B64
    encryption_keys: list[_V1EncryptionKey]
    pins: dict[str, _V1Pin]
    checkpoints: dict[str, _V1Checkpoint]
    extra: _V1Extra


def state_from_v3(value: dict[str, Any]) -> KeystoreState:
    """The state of a version-2 or version-3 file (its decrypted JSON): its one
    ``server`` becomes `KeystoreState.servers`; `KeystoreError` if malformed."""
    server = value.get("server")
    if not isinstance(server, str) or "servers" in value:
        raise KeystoreError("the keystore holds a malformed state: no server URL")
    rest = {name: field for name, field in value.items() if name != "server"}
    try:
        return KeystoreState.model_validate({**rest, "servers": [server]})
    except ValidationError as exc:
        raise KeystoreError(f"the keystore holds a malformed state: {exc}") from exc


def state_from_v1(value: dict[str, Any]) -> KeystoreState:
    """The state of a version-1 file (its decrypted JSON); `KeystoreError` if malformed."""
    try:
        old = _V1State.model_validate(value)
        extra = old.extra
        return KeystoreState.model_validate(
            {
                **old.model_dump(exclude={"extra", "server"}),
                "servers": [old.server],
                "log_keys": extra.log_keys,
                "roster_heads": {
                    room_id: {"version": version, "body_hash": body_hash}
                    for room_id, (version, body_hash) in extra.roster_heads.items()
                },
                "witness_key": extra.witness_key,
            }
        )
    except ValidationError as exc:
        raise KeystoreError(f"the version-1 keystore holds a malformed state: {exc}") from exc
