"""Verifying an excerpt offline (issue 8): every check, no server, no private key.

In order, each failure a `VerificationError` naming what failed:

1. the log keys: C2SP verifier keys named by the room's and the directory's
   origins on one host, with one public key (the server signs every log
   with one key), equal to the key the verifier was given if it was given;
2. both checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint);
3. the directory entries: each registration self-signed by its account key,
   each device certificate signed by that key, each the leaf it claims to
   be (origin, index, type, actor, payload hash, signature) and included in
   the directory checkpoint (RFC 9162 §2.1.3.2);
4. the roster chain from version 1: each version signed by a mediator of
   the version before (version 1 by a mediator it lists, whom the directory
   registers as a mediator), chained by hash, logged in order, and each
   signer's device key the directory's;
5. each message: sealed in this room to exactly the devices of its channel
   at the roster version it names, which was logged before it (and replaced
   only after it, when the excerpt shows the next version); signed by the
   sender's device key as both the roster and the directory list it; its
   leaf is this envelope's and is included in the room checkpoint; the
   revealed content key matches the header's key commitment and decrypts
   the ciphertext (ChaCha20-Poly1305, `envelope.decrypt_content`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from client_sdk.protocol.encoding import b64d, b64e, sha256
from client_sdk.protocol.envelope import check_envelope, decrypt_content
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.excerpt.format import Excerpt, ExcerptMessage, LogEntry, LoggedStatement
from client_sdk.protocol.keys import key_id
from client_sdk.protocol.leaf import LogLeaf, parse_leaf
from client_sdk.protocol.mediation import channel_devices, channel_sides
from client_sdk.protocol.merkle import leaf_hash, verify_inclusion
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.note import (
    Checkpoint,
    VerifierKey,
    parse_verifier_key,
    verify_checkpoint,
)
from client_sdk.protocol.statements import (
    DeviceCert,
    Registration,
    Roster,
    SignedStatement,
    parse_statement,
    verify_statement,
)

_S = TypeVar("_S", Registration, DeviceCert, Roster)


@dataclass(frozen=True, slots=True)
class VerifiedExcerptMessage:
    """A message of the excerpt that passed every check, with what it proves."""

    leaf_index: int
    message_id: str
    room_id: str
    channel: str
    sender_device: str
    sender_account: str
    sender_name: str
    side: Side
    roster_version: int
    sent_at: int
    """The sender's clock, as signed in the header."""
    logged_at: int
    """The server's time in the log leaf."""
    content: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Log:
    origin: str
    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class _Directory:
    accounts: dict[str, tuple[Registration, int]]
    devices: dict[str, tuple[DeviceCert, int]]


def _key(text: str, what: str) -> VerifierKey:
    try:
        return parse_verifier_key(text)
    except ProtocolError as exc:
        raise VerificationError(f"{what}: {exc}") from exc


def _logs(excerpt: Excerpt, log_key: str | None) -> tuple[_Log, _Log]:
    room_key = _key(excerpt.room_log.log_key, "the room log key")
    directory_key = _key(excerpt.directory_log.log_key, "the directory log key")
    suffix = f"/rooms/{excerpt.room_id}"
    host = room_key.name.removesuffix(suffix)
    if not host or host == room_key.name:
        raise VerificationError(f"the room log key is not named for room {excerpt.room_id}")
    if directory_key.name != f"{host}/directory":
        raise VerificationError("the directory log is not the room's server's directory")
    if directory_key.public_key != room_key.public_key:
        raise VerificationError("the room and directory logs are signed by different keys")
    if log_key is not None:
        given = _key(log_key, "the log key given")
        if given.public_key != room_key.public_key:
            raise VerificationError("the excerpt's logs are not signed by the log key given")
    return (
        _Log(
            room_key.name, verify_checkpoint(excerpt.room_log.checkpoint, room_key.name, room_key)
        ),
        _Log(
            directory_key.name,
            verify_checkpoint(excerpt.directory_log.checkpoint, directory_key.name, directory_key),
        ),
    )


def _decode(text: str, what: str) -> bytes:
    try:
        return b64d(text)
    except ProtocolError as exc:
        raise VerificationError(f"{what}: {exc}") from exc


def _check_entry(
    entry: LogEntry,
    log: _Log,
    *,
    type: str,
    actor_device: str,
    payload_hash: bytes,
    signature: str,
    what: str,
) -> LogLeaf:
    """The entry's leaf records exactly this event and is included in the checkpoint."""
    raw = _decode(entry.leaf, f"{what}: the leaf")
    try:
        leaf = parse_leaf(raw)
    except ProtocolError as exc:
        raise VerificationError(f"{what}: bad leaf: {exc}") from exc
    expected = {
        "origin": log.origin,
        "index": entry.index,
        "type": type,
        "actor_device": actor_device,
        "payload_sha256": b64e(payload_hash),
        "signature": signature,
    }
    for field, value in expected.items():
        if getattr(leaf, field) != value:
            raise VerificationError(f"{what}: the leaf's {field} does not match")
    proof = [_decode(p, f"{what}: the inclusion proof") for p in entry.proof]
    try:
        verify_inclusion(
            leaf_hash(raw), entry.index, log.checkpoint.size, proof, log.checkpoint.root_hash
        )
    except VerificationError as exc:
        raise VerificationError(f"{what}: not included in the checkpoint: {exc}") from exc
    return leaf


def _statement(signed: SignedStatement, model: type[_S], key: bytes, what: str) -> _S:
    try:
        return verify_statement(signed, key, model)
    except VerificationError as exc:
        raise VerificationError(f"{what}: {exc}") from exc


def _directory(items: list[LoggedStatement], log: _Log) -> _Directory:
    accounts: dict[str, tuple[Registration, int]] = {}
    devices: dict[str, tuple[DeviceCert, int]] = {}
    for item in items:
        signed, index = item.statement, item.entry.index
        what = f"directory entry {index}"
        kind = signed.body.get("type")
        if kind == "registration":
            key = _decode(str(signed.body.get("account_key", "")), f"{what}: the account key")
            registration = _statement(signed, Registration, key, what)
            if registration.account_id in accounts:
                raise VerificationError(f"{what}: account {registration.account_id} twice")
            accounts[registration.account_id] = (registration, index)
            leaf_type = "registration"
        elif kind == "device-cert":
            account = accounts.get(str(signed.body.get("account_id")))
            if account is None:
                raise VerificationError(f"{what}: a device of an account not registered before")
            key = _decode(account[0].account_key, f"{what}: the account key")
            cert = _statement(signed, DeviceCert, key, what)
            if cert.device_id != key_id(_decode(cert.signing_key, f"{what}: the device key")):
                raise VerificationError(f"{what}: the device id is not its key's id")
            if index < account[1] or cert.device_id in devices:
                raise VerificationError(f"{what}: device {cert.device_id} out of order or twice")
            devices[cert.device_id] = (cert, index)
            leaf_type = "device"
        else:
            raise VerificationError(f"{what}: not a registration or device certificate")
        _check_entry(
            item.entry,
            log,
            type=leaf_type,
            actor_device=key_id(key),
            payload_hash=signed.body_hash(),
            signature=signed.signature,
            what=what,
        )
    return _Directory(accounts, devices)


def _check_device(
    directory: _Directory, account_id: str, account_key: str, device_id: str, signing_key: str
) -> Registration:
    """The directory registers `account_id` with `account_key` and certifies the device key."""
    account = directory.accounts.get(account_id)
    if account is None:
        raise VerificationError(f"the excerpt does not prove account {account_id}'s registration")
    if account[0].account_key != account_key:
        raise VerificationError(f"account {account_id}'s key is not the one in the directory")
    device = directory.devices.get(device_id)
    if device is None:
        raise VerificationError(f"the excerpt does not prove device {device_id}'s certificate")
    cert = device[0]
    if cert.account_id != account_id or cert.signing_key != signing_key:
        raise VerificationError(f"device {device_id}'s key is not the one in the directory")
    return account[0]


def _rosters(
    items: list[LoggedStatement], excerpt: Excerpt, log: _Log, directory: _Directory
) -> list[tuple[Roster, int]]:
    chain: list[tuple[Roster, int]] = []
    previous: tuple[Roster, SignedStatement] | None = None
    for version, item in enumerate(items, start=1):
        what = f"roster version {version}"
        try:
            roster = parse_statement(item.statement, Roster)
        except ProtocolError as exc:
            raise VerificationError(f"{what}: {exc}") from exc
        if roster.room_id != excerpt.room_id or roster.version != version:
            raise VerificationError(
                f"{what}: the chain holds room {roster.room_id} v{roster.version}"
            )
        if previous is None:
            if roster.prev_hash is not None:
                raise VerificationError(f"{what}: the first roster chains to nothing")
            signers = roster
        else:
            if roster.prev_hash != b64e(previous[1].body_hash()):
                raise VerificationError(f"{what}: does not chain to the version before")
            if item.entry.index <= chain[-1][1]:
                raise VerificationError(f"{what}: logged before the version it follows")
            signers = previous[0]
        signer = signers.device_owner(roster.signer_device)
        if signer is None or signer.side is not Side.MEDIATOR:
            raise VerificationError(f"{what}: not signed by a mediator")
        signing_key = signer.signing_key_of(roster.signer_device)
        _statement(item.statement, Roster, _decode(signing_key, what), what)
        registration = _check_device(
            directory, signer.account_id, signer.account_key, roster.signer_device, signing_key
        )
        if previous is None and registration.role is not Role.MEDIATOR:
            raise VerificationError(f"{what}: its signer is not a mediator in the directory")
        _check_entry(
            item.entry,
            log,
            type="roster",
            actor_device=roster.signer_device,
            payload_hash=item.statement.body_hash(),
            signature=item.statement.signature,
            what=what,
        )
        chain.append((roster, item.entry.index))
        previous = (roster, item.statement)
    return chain


def _message(
    item: ExcerptMessage,
    excerpt: Excerpt,
    log: _Log,
    chain: list[tuple[Roster, int]],
    directory: _Directory,
) -> VerifiedExcerptMessage:
    envelope, index = item.envelope, item.entry.index
    header = envelope.header
    what = f"message at index {index}"
    if header.room_id != excerpt.room_id:
        raise VerificationError(f"{what}: sealed for room {header.room_id}")
    if not 1 <= header.roster_version <= len(chain):
        raise VerificationError(f"{what}: roster version {header.roster_version} is not shown")
    roster, roster_index = chain[header.roster_version - 1]
    following = chain[header.roster_version] if header.roster_version < len(chain) else None
    if not roster_index < index or (following is not None and following[1] < index):
        raise VerificationError(f"{what}: roster version {roster.version} was not in force")
    try:
        recipients = channel_devices(roster, header.channel)
    except ValueError as exc:
        raise VerificationError(f"{what}: {exc}") from exc
    if header.recipients != recipients:
        raise VerificationError(f"{what}: not sealed to exactly the devices of {header.channel}")
    member = roster.device_owner(header.sender_device)
    if member is None:
        raise VerificationError(f"{what}: the sender is not in roster version {roster.version}")
    if member.side is Side.OBSERVER or member.side not in (channel_sides(header.channel) or ()):
        raise VerificationError(
            f"{what}: side {member.side.value} does not post in {header.channel}"
        )
    signing_key = member.signing_key_of(header.sender_device)
    _check_device(
        directory, member.account_id, member.account_key, header.sender_device, signing_key
    )
    try:
        check_envelope(envelope, _decode(signing_key, what))
    except VerificationError as exc:
        raise VerificationError(f"{what}: {exc}") from exc
    leaf = _check_entry(
        item.entry,
        log,
        type="message",
        actor_device=header.sender_device,
        payload_hash=sha256(envelope.signed_bytes()),
        signature=envelope.signature,
        what=what,
    )
    try:
        content = decrypt_content(envelope, _decode(item.content_key, f"{what}: the content key"))
    except VerificationError as exc:
        raise VerificationError(f"{what}: {exc}") from exc
    return VerifiedExcerptMessage(
        leaf_index=index,
        message_id=header.message_id,
        room_id=header.room_id,
        channel=header.channel,
        sender_device=header.sender_device,
        sender_account=member.account_id,
        sender_name=member.name,
        side=member.side,
        roster_version=roster.version,
        sent_at=header.sent_at,
        logged_at=leaf.server_time,
        content=MappingProxyType(content),
    )


def verify_excerpt(excerpt: Excerpt, log_key: str | None = None) -> list[VerifiedExcerptMessage]:
    """Check an excerpt end to end; return its messages in log order.

    `log_key` is the server's log key as a C2SP verifier key string, obtained
    out of band; without it the excerpt's own key is taken at its word, and
    the result proves only that the server that key names logged these
    messages. Raises `VerificationError` with the first failure.
    """
    room_log, directory_log = _logs(excerpt, log_key)
    directory = _directory(excerpt.directory, directory_log)
    chain = _rosters(excerpt.rosters, excerpt, room_log, directory)
    indices = [m.entry.index for m in excerpt.messages]
    if len(set(indices)) != len(indices):
        raise VerificationError("a message appears twice in the excerpt")
    messages = [_message(m, excerpt, room_log, chain, directory) for m in excerpt.messages]
    return sorted(messages, key=lambda m: m.leaf_index)
