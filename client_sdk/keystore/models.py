"""What the keystore holds: one set of frozen models that is both the state in
memory and, through pydantic, its stored JSON (format version 4; `migrate` reads
the states of versions 1 to 3).

Bytes and private keys are unpadded base64url in JSON; every field is typed,
unknown fields are errors. Nothing here is changed in place: a change builds a
new `KeystoreState` (see `rules`), so an old view can never be written back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, PlainSerializer, PlainValidator, StrictBool

from client_sdk.protocol.documents import DocumentContent
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.envelope import Envelope
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.models import Int, Role, WireModel

__all__ = [
    "CheckpointRecord",
    "EncryptionKeyRecord",
    "KeystoreState",
    "PendingUpload",
    "Pin",
    "PinResult",
    "RosterHead",
    "server_urls",
]

_T = TypeVar("_T")


def _from_b64(kind: type[_T], parse: Any) -> Any:
    """A validator: `kind` as it is (built in Python), or parsed from base64url text (JSON)."""

    def validate(value: object) -> _T:
        if isinstance(value, kind):
            return value
        if not isinstance(value, str):
            raise ValueError("expected unpadded base64url text")
        try:
            parsed: _T = parse(b64d(value))
        except ProtocolError as exc:
            raise ValueError(str(exc)) from exc
        return parsed

    return PlainValidator(validate)


Bytes = Annotated[
    bytes, _from_b64(bytes, bytes), PlainSerializer(b64e, return_type=str, when_used="json")
]
"""Bytes, stored as unpadded base64url."""

StoredSigningKey = Annotated[
    SigningKey,
    _from_b64(SigningKey, SigningKey.from_bytes),
    PlainSerializer(lambda k: b64e(k.private_bytes()), return_type=str, when_used="json"),
]
"""An Ed25519 private key, stored as its raw 32 bytes."""

StoredEncryptionKey = Annotated[
    EncryptionKey,
    _from_b64(EncryptionKey, EncryptionKey.from_bytes),
    PlainSerializer(lambda k: b64e(k.private_bytes()), return_type=str, when_used="json"),
]
"""An X-Wing private key, stored as its 32-byte seed (a legacy key as its 96 bytes)."""


def server_urls(urls: Iterable[str]) -> tuple[str, ...]:
    """Server URLs as a profile keeps them: each http(s), without a trailing slash, each
    once, in the order given (the first is preferred); `ProtocolError` if there are
    none or one is not an http(s) URL."""
    found: list[str] = []
    for url in urls:
        clean = url.strip().rstrip("/")
        scheme, sep, rest = clean.partition("://")
        if not (sep and scheme in ("http", "https") and rest) or any(c.isspace() for c in rest):
            raise ProtocolError(f"a server URL starts with http:// or https://, not {url!r}")
        if clean not in found:
            found.append(clean)
    if not found:
        raise ProtocolError("at least one server URL is needed")
    return tuple(found)


def _valid_servers(urls: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return server_urls(urls)
    except ProtocolError as exc:
        raise ValueError(str(exc)) from exc


ServerUrls = Annotated[tuple[str, ...], AfterValidator(_valid_servers)]
"""A profile's server URLs (see `server_urls`)."""


class PinResult(enum.Enum):
    """What `Keystore.pin` found: a first sighting, the pinned key, or a different key."""

    NEW = "new"
    SAME = "same"
    CHANGED = "changed"


class EncryptionKeyRecord(WireModel):
    """One of this device's HPKE keys; retired keys stay until `purge_retired`.

    A key is kept (``published`` false) before its certificate is sent to the
    directory, so that a process that dies in between never leaves a public key
    in the directory whose private key was lost; it becomes current once published.
    """

    key_id: str
    private: StoredEncryptionKey
    public: Bytes
    created_at: Int
    not_after: Int
    retired_at: Int | None = None
    published: StrictBool = True

    @classmethod
    def new(
        cls, key: EncryptionKey, not_after: int, now: int, *, published: bool = True
    ) -> EncryptionKeyRecord:
        """A record for `key`, created at `now`."""
        public = key.public_bytes()
        return cls(
            key_id=key_id(public),
            private=key,
            public=public,
            created_at=now,
            not_after=not_after,
            published=published,
        )


class Pin(WireModel):
    """A contact's pinned account key.

    ``account_key`` is the key trusted now (first seen, or verified);
    ``verified_key`` the key the user last verified, if ever; ``pending_key``
    a different key seen after verification, trusted only once re-verified.
    """

    account_key: Bytes
    first_seen: Int
    verified: StrictBool = False
    verified_key: Bytes | None = None
    pending_key: Bytes | None = None


class CheckpointRecord(WireModel):
    """The newest checkpoint of one log this client has verified (its signed note too)."""

    size: Int
    root: Bytes
    note: str


class RosterHead(WireModel):
    """The newest roster version of one room this client verified, and its body hash."""

    version: Int
    body_hash: Bytes


class PendingUpload(WireModel):
    """A document upload begun and not yet sent as a message: what resuming it needs
    (docs/design.md §7). The content key is secret, which is why this lives in the
    encrypted keystore; the record goes once the message is sent, or the upload is gone.
    """

    upload_id: str
    room_id: str
    channel: str
    path: str
    """The file's absolute path; with `size` and `mtime_us`, how a resend finds it."""
    size: Int
    mtime_us: Int
    file_id: str
    message_id: str
    content_key: Bytes
    chunk_size: Int
    name: str
    media_type: str
    created_at: Int
    document: DocumentContent | None = None
    """Once the upload is complete: the content of the message that carries it."""
    envelope: Envelope | None = None
    """Once sealed: the very envelope to post (again), so a message that landed but
    whose answer was lost is answered by its message id instead of sent twice."""


class KeystoreState(WireModel):
    """Everything the keystore holds: identity, private keys, and every trust anchor.

    The anchors: `pins` (contacts' account keys), `log_keys` (each log's
    verifier key, pinned on first sight), `checkpoints` (newest verified per
    log), `roster_heads` (newest verified roster per room) and `witness_key`
    (the seed of an auditor's witness key, made on first use). `auto_receipts`
    is a setting: acknowledge every message read, not only instruments,
    disclosures and documents.
    `servers` are the URLs of one deployment's replicas, the preferred first (the
    client fails over to the next: `client_sdk.client.http`).
    """

    servers: ServerUrls
    account_id: str
    device_id: str
    role: Role
    name: str
    account_key: StoredSigningKey
    device_key: StoredSigningKey
    encryption_keys: tuple[EncryptionKeyRecord, ...] = ()
    pins: Mapping[str, Pin] = Field(default_factory=dict)
    checkpoints: Mapping[str, CheckpointRecord] = Field(default_factory=dict)
    log_keys: Mapping[str, str] = Field(default_factory=dict)
    roster_heads: Mapping[str, RosterHead] = Field(default_factory=dict)
    witness_key: Bytes | None = None
    pending_uploads: Mapping[str, PendingUpload] = Field(default_factory=dict)
    """Document uploads to resume, by upload id."""
    auto_receipts: StrictBool = False

    @property
    def server(self) -> str:
        """The preferred server URL (the first of `servers`)."""
        return self.servers[0]

    def to_json(self) -> dict[str, Any]:
        """The stored form: a JSON object of base64url strings, integers and objects."""
        return self.model_dump(mode="json")
