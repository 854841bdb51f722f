"""The checks of one log entry that need no other entry: leaf, payload hash, signature.

Pure and picklable, so `check_chunk` runs in worker processes. The entry's
context (which key must have signed it, which roster was in force) is worked
out beforehand, in log order, by `client_sdk.audit.log`; here each entry is
checked against it:

- the leaf parses, is canonical, and names the log's origin, the entry's
  index, the event type, the acting device, the hash of what the actor
  signed, and the actor's signature;
- room messages: the envelope header and wraps (no ciphertext) are well
  formed, sealed to the roster in force, by the device the leaf names, to
  devices of that roster; label ``envelope`` over ``canonical({header, wraps})``;
- directory statements: registration, device and encryption-key
  certificates signed by the account key, under their labels; revocations
  signed by the account key or (the operator's) by the log key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from client_sdk.protocol.encoding import b64d, b64e, canonical_json, sha256
from client_sdk.protocol.envelope import Header
from client_sdk.protocol.errors import ParleyError, ProtocolError, VerificationError
from client_sdk.protocol.keys import SigLabel, key_id, verify_signature
from client_sdk.protocol.leaf import parse_leaf
from client_sdk.protocol.models import JSON_SAFE_INT
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Registration,
    Revocation,
    SignedStatement,
    verify_statement,
)

Failure = tuple[int, str]
"""The index of an entry that failed and why."""

REBUILT = "the log was rebuilt or forked"
"""How a message's failure ends when its gossip shows the log was rebuilt around it."""

Gossip = tuple[int, int, bytes]
"""A message's gossip: its index, and the size and root of the newest checkpoint of the
room's log its sender had verified (what the envelope header says it saw)."""


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What checking a chunk found: the first failure, and the gossip of its messages."""

    failure: Failure | None
    gossip: tuple[Gossip, ...] = ()


ENVELOPE_FIELDS = frozenset({"header", "wraps", "signature"})
DIRECTORY_LEAF_TYPES = {
    "registration": "registration",
    "device-cert": "device",
    "encryption-key-cert": "encryption-key",
    "revocation": "revocation",
}
"""A directory statement's type -> the type of the leaf that logs it."""

_IDENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SERVER_TIME = re.compile(rb'"server_time":(-?[1-9][0-9]{0,15}|0)[,}]')


@dataclass(frozen=True, slots=True)
class ChunkContext:
    """What every entry of a chunk is checked against."""

    log_id: str
    origin: str
    roster_devices: Mapping[int, frozenset[str]]
    """Room logs: roster version -> its device ids (the versions this chunk's messages use)."""
    roster_keys: Mapping[int, Mapping[str, bytes]] = field(default_factory=dict)
    """Room logs: roster version -> device id -> signing key, for messages whose sender
    the checks read from the envelope (those given unparsed)."""


@dataclass(frozen=True, slots=True)
class EntryJob:
    """One entry and the context its place in the log gives it."""

    index: int
    leaf: bytes
    signed: dict[str, Any] | bytes
    """What the actor signed: parsed, or (messages of a tiled bundle) its JSON bytes."""
    leaf_type: str
    """``message``, or a directory type (``registration``, ``device``, ``encryption-key``)."""
    signer_key: bytes
    """The Ed25519 key that must have signed: the sender device's, or the account key
    (empty for a message given unparsed: the sender's key in the roster in force)."""
    actor_device: str
    roster_version: int = 0
    """Messages: the roster version in force at this index."""


def check_leaf(
    raw: bytes,
    *,
    origin: str,
    index: int,
    leaf_type: str,
    actor_device: str,
    payload_hash: bytes,
    signature: str,
) -> None:
    """Check that a leaf is the canonical record of exactly this event.

    The leaf's bytes must be the canonical encoding of the expected record
    (only the server's time is the leaf's own): one comparison checks every
    field and the canonical form. Raises `VerificationError` saying which
    field differs.
    """
    expected: dict[str, Any] = {
        "origin": origin,
        "index": index,
        "type": leaf_type,
        "actor_device": actor_device,
        "payload_sha256": b64e(payload_hash),
        "signature": signature,
    }
    found = _SERVER_TIME.search(raw)  # the only field not known: read it without parsing
    server_time = int(found.group(1)) if found else None
    if server_time is not None and abs(server_time) <= JSON_SAFE_INT:
        if canonical_json({**expected, "server_time": server_time}) == raw:
            return
    # Not the record expected: find out why, for the message.
    try:
        leaf = parse_leaf(raw)
    except ProtocolError as exc:
        raise VerificationError(f"bad leaf: {exc}") from exc
    for name, value in expected.items():
        if getattr(leaf, name) != value:
            raise VerificationError(
                f"the leaf's {name} is {getattr(leaf, name)!r}, the entry says {value!r}"
            )
    # Canonical (parse_leaf checks) and as expected: the server time was not read above.


def check_chunk(context: ChunkContext, jobs: list[EntryJob]) -> ChunkResult:
    """Check each job in order: the first failure (or None), and the gossip of the
    messages checked."""
    gossip: list[Gossip] = []
    for job in jobs:
        try:
            if job.leaf_type == "message":
                seen = _check_message(context, job)
                if seen is not None:
                    gossip.append(seen)
            else:
                _check_statement(context, job)
        except (ParleyError, ValueError, TypeError, KeyError) as exc:
            # Whatever made the entry impossible to check, it is not verified.
            return ChunkResult((job.index, str(exc) or type(exc).__name__), tuple(gossip))
    return ChunkResult(None, tuple(gossip))


def _wraps(value: Any) -> dict[str, str]:
    """The key wraps: device id -> text (their bytes are the signature's business)."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and _IDENT.fullmatch(k) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProtocolError("the key wraps are not a map of device ids to text")
    return value


def _check_message(context: ChunkContext, job: EntryJob) -> Gossip | None:
    """Check a message entry; its gossip, if its header names a checkpoint."""
    signed = job.signed
    if isinstance(signed, bytes):
        signed = json.loads(signed)
        if not isinstance(signed, dict):
            raise VerificationError("the signed envelope is not a JSON object")
    if set(signed) != ENVELOPE_FIELDS:
        raise VerificationError(
            "the signed envelope has fields other than header, wraps, signature"
        )
    try:
        header = Header.model_validate(signed["header"])
        wraps = _wraps(signed["wraps"])
        signature = b64d(signed["signature"])
    except (ValidationError, ProtocolError) as exc:
        raise VerificationError(f"malformed envelope: {exc}") from exc
    if header.room_id != context.log_id:
        raise VerificationError(f"the envelope is for room {header.room_id}")
    actor, signer_key = job.actor_device, job.signer_key
    if not signer_key:  # given unparsed: the sender is the envelope's, the leaf must agree
        actor = header.sender_device
        found = context.roster_keys.get(job.roster_version, {}).get(actor)
        if found is None:
            raise VerificationError(
                f"the sender device is not in roster version {job.roster_version}"
            )
        signer_key = found
    if header.sender_device != actor:
        raise VerificationError("the envelope's sender is not the entry's actor")
    if header.roster_version != job.roster_version:
        raise VerificationError(
            f"the envelope is sealed to roster version {header.roster_version}, but version "
            f"{job.roster_version} is in force"
        )
    if sorted(wraps) != header.recipients or len(set(header.recipients)) != len(wraps):
        raise VerificationError("the key wraps do not match the header's recipient list")
    if not set(header.recipients) <= context.roster_devices[job.roster_version]:
        raise VerificationError(
            f"a recipient is not a device of roster version {job.roster_version}"
        )
    # What the actor signed is the RFC 8785 form of header and wraps (the library's, as
    # everywhere else): any other encoding of the same values has another hash.
    data = canonical_json({"header": signed["header"], "wraps": signed["wraps"]})
    check_leaf(
        job.leaf,
        origin=context.origin,
        index=job.index,
        leaf_type="message",
        actor_device=actor,
        payload_hash=sha256(data),
        signature=signed["signature"],
    )
    verify_signature(signer_key, SigLabel.ENVELOPE, data, signature)
    return _gossip(job.index, header)


def _check_statement(context: ChunkContext, job: EntryJob) -> None:
    if isinstance(job.signed, bytes):
        raise VerificationError("a directory statement given unparsed")
    try:
        signed = SignedStatement.model_validate(job.signed)
    except ValidationError as exc:
        raise VerificationError(f"malformed signed statement: {exc}") from exc
    if job.leaf_type == "registration":
        registration = verify_statement(signed, job.signer_key, Registration)
        if b64d(registration.account_key) != job.signer_key:
            raise VerificationError("the registration is not signed by the key it registers")
    elif job.leaf_type == "device":
        device = verify_statement(signed, job.signer_key, DeviceCert)
        if device.device_id != key_id(b64d(device.signing_key)):
            raise VerificationError("the device id is not the key id of its signing key")
    elif job.leaf_type == "encryption-key":
        encryption = verify_statement(signed, job.signer_key, EncryptionKeyCert)
        if encryption.key_id != key_id(b64d(encryption.public_key)):
            raise VerificationError("the key id is not the key id of the encryption key")
    elif job.leaf_type == "revocation":
        verify_statement(signed, job.signer_key, Revocation)
    else:
        raise VerificationError(f"unknown directory entry type {job.leaf_type!r}")
    check_leaf(
        job.leaf,
        origin=context.origin,
        index=job.index,
        leaf_type=job.leaf_type,
        actor_device=job.actor_device,
        payload_hash=signed.body_hash(),
        signature=signed.signature,
    )


def _gossip(index: int, header: Header) -> Gossip | None:
    """The checkpoint a message's sender saw, which must be of a log before the message:
    one larger than the message's own index means the log was rebuilt around it."""
    seen = header.checkpoint
    if seen is None:
        return None
    if seen.size > index:
        raise VerificationError(
            f"its sender saw the log at size {seen.size}, but it is entry {index}: {REBUILT}"
        )
    return index, seen.size, b64d(seen.root)
