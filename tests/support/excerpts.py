"""An in-memory server for excerpt tests: a directory log, a room log, a log key, and
members who register, sign rosters and seal messages with the real protocol code."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.protocol.encoding import b64e, sha256
from client_sdk.protocol.envelope import Envelope, Recipient, seal_envelope, unwrap_content_key
from client_sdk.protocol.excerpt import (
    Excerpt,
    ExcerptMessage,
    LogEntry,
    LoggedStatement,
    SignedLog,
    build_excerpt,
    log_entry,
)
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.leaf import LogLeaf, directory_origin, room_origin
from client_sdk.protocol.mediation import channel_devices
from client_sdk.protocol.merkle import inclusion_proof_from_leaves, leaf_hash, root_from_leaf_hashes
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.note import Checkpoint, format_verifier_key, sign_note
from client_sdk.protocol.statements import (
    DeviceCert,
    Registration,
    Roster,
    RosterDevice,
    RosterMember,
    SignedStatement,
    device_id_for,
    sign_statement,
)

HOST = "parley.example"
ROOM = "room-1"
T0 = 1_764_000_000_000


@dataclass(frozen=True)
class Person:
    """An account with one device and its three keys."""

    account_id: str
    name: str
    role: Role
    side: Side
    account_key: SigningKey = field(default_factory=SigningKey.generate)
    device_key: SigningKey = field(default_factory=SigningKey.generate)
    encryption_key: EncryptionKey = field(default_factory=EncryptionKey.generate)

    @property
    def device_id(self) -> str:
        return device_id_for(self.device_key.public_bytes())

    def member(self) -> RosterMember:
        return RosterMember(
            account_id=self.account_id,
            name=self.name,
            side=self.side,
            account_key=b64e(self.account_key.public_bytes()),
            devices=[
                RosterDevice(
                    device_id=self.device_id, signing_key=b64e(self.device_key.public_bytes())
                )
            ],
        )


class MemoryLog:
    """A log's leaves, appended as the server's appender would, with proofs and checkpoints."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.leaves: list[bytes] = []

    def append(self, kind: str, actor: str, payload_hash: bytes, signature: str) -> int:
        index = len(self.leaves)
        leaf = LogLeaf(
            origin=self.origin,
            index=index,
            type=kind,
            actor_device=actor,
            server_time=T0 + index,
            payload_sha256=b64e(payload_hash),
            signature=signature,
        )
        self.leaves.append(leaf.to_bytes())
        return index

    def entry(self, index: int) -> LogEntry:
        hashes = [leaf_hash(leaf) for leaf in self.leaves]
        return log_entry(index, self.leaves[index], inclusion_proof_from_leaves(index, hashes))

    def signed(self, key: Ed25519PrivateKey) -> SignedLog:
        root = root_from_leaf_hashes([leaf_hash(leaf) for leaf in self.leaves])
        text = Checkpoint(self.origin, len(self.leaves), root).to_text()
        return SignedLog(
            log_key=format_verifier_key(self.origin, key.public_key().public_bytes_raw()),
            checkpoint=sign_note(text, self.origin, key),
        )


class World:
    """A server's two logs and a room with a mediator and two parties."""

    def __init__(self) -> None:
        self.log_key = Ed25519PrivateKey.generate()
        self.directory = MemoryLog(directory_origin(HOST))
        self.room = MemoryLog(room_origin(HOST, ROOM))
        self.mediator = Person("acc-mediator", "Mediator", Role.MEDIATOR, Side.MEDIATOR)
        self.alice = Person("acc-alice", "Alice of A", Role.PARTY, Side.A)
        self.bob = Person("acc-bob", "Bob of B", Role.PARTY, Side.B)
        self.directory_items: list[LoggedStatement] = []
        self.rosters: list[LoggedStatement] = []
        self.messages: dict[int, ExcerptMessage] = {}
        for person in (self.mediator, self.alice, self.bob):
            self.register(person)

    def register(self, person: Person) -> None:
        account_public = person.account_key.public_bytes()
        statements = [
            sign_statement(
                person.account_key,
                Registration(
                    account_id=person.account_id,
                    name=person.name,
                    role=person.role,
                    account_key=b64e(account_public),
                    issued_at=T0,
                ),
            ),
            sign_statement(
                person.account_key,
                DeviceCert(
                    account_id=person.account_id,
                    device_id=person.device_id,
                    signing_key=b64e(person.device_key.public_bytes()),
                    issued_at=T0,
                ),
            ),
        ]
        for signed, kind in zip(statements, ("registration", "device"), strict=True):
            index = self.directory.append(
                kind, key_id(account_public), signed.body_hash(), signed.signature
            )
            self.directory_items.append(self._logged(signed, index, self.directory))

    def _logged(self, signed: SignedStatement, index: int, log: MemoryLog) -> LoggedStatement:
        # Entries are re-proven against the final checkpoint in `excerpt`.
        return LoggedStatement(statement=signed, entry=log.entry(index))

    def publish_roster(self, members: list[Person], *, title: str = "Talks") -> Roster:
        previous = self.rosters[-1].statement if self.rosters else None
        roster = Roster(
            room_id=ROOM,
            version=len(self.rosters) + 1,
            prev_hash=b64e(previous.body_hash()) if previous else None,
            title=title,
            members=[p.member() for p in members],
            signer_device=self.mediator.device_id,
            issued_at=T0,
        )
        signed = sign_statement(self.mediator.device_key, roster)
        index = self.room.append(
            "roster", roster.signer_device, signed.body_hash(), signed.signature
        )
        self.rosters.append(self._logged(signed, index, self.room))
        self.current = roster
        return roster

    def send(self, sender: Person, body: str, *, channel: str = "plenary") -> int:
        devices = channel_devices(self.current, channel)
        people = {p.device_id: p for p in (self.mediator, self.alice, self.bob)}
        envelope = seal_envelope(
            content={"type": "text", "body": body},
            room_id=ROOM,
            channel=channel,
            roster_version=self.current.version,
            sender_device=sender.device_id,
            sender_key=sender.device_key,
            recipients=[Recipient(d, people[d].encryption_key.public_bytes()) for d in devices],
            sent_at=T0 + 1000 * len(self.room.leaves),
        )
        index = self.room.append(
            "message", sender.device_id, sha256(envelope.signed_bytes()), envelope.signature
        )
        self.messages[index] = ExcerptMessage(
            envelope=envelope,
            content_key=b64e(self._content_key(envelope, people[devices[0]])),
            entry=self.room.entry(index),
        )
        return index

    def _content_key(self, envelope: Envelope, member: Person) -> bytes:
        return unwrap_content_key(
            envelope, recipient_device=member.device_id, recipient_key=member.encryption_key
        )

    def excerpt(self, indices: list[int]) -> Excerpt:
        """An excerpt of these room entries, proven against the logs as they are now."""

        def reproven(item: LoggedStatement, log: MemoryLog) -> LoggedStatement:
            return item.model_copy(update={"entry": log.entry(item.entry.index)})

        return build_excerpt(
            room_id=ROOM,
            room_log=self.room.signed(self.log_key),
            directory_log=self.directory.signed(self.log_key),
            messages=[
                self.messages[i].model_copy(update={"entry": self.room.entry(i)}) for i in indices
            ],
            rosters=[reproven(r, self.room) for r in self.rosters],
            directory=[reproven(d, self.directory) for d in self.directory_items],
        )
