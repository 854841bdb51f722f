"""Logs built from the protocol code alone, signed as a Parley server and its actors would:
a room (three rosters, then messages) or the directory, as an `AuditBundle`.

Messages reuse one sealed envelope's key wraps under fresh headers, each
re-signed by its sender: an audit checks signatures, never decrypts, so this
builds thousands of valid entries in a second.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.audit import AuditBundle, TiledBundle
from client_sdk.audit.archive import TiledManifest, TiledWriter, open_tiled, signed_bytes_of
from client_sdk.protocol.encoding import b64d, b64e, canonical_json, sha256
from client_sdk.protocol.envelope import Envelope, Recipient, seal_envelope, signed_bytes
from client_sdk.protocol.keys import EncryptionKey, SigLabel, SigningKey, key_id
from client_sdk.protocol.leaf import LogLeaf, directory_origin, room_origin
from client_sdk.protocol.merkle import leaf_hash, root_from_leaf_hashes
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.note import (
    SIG_COSIGNATURE_V1,
    Checkpoint,
    cosign,
    format_verifier_key,
    sign_note,
)
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Registration,
    Roster,
    RosterDevice,
    RosterMember,
    SignedStatement,
    sign_statement,
)

HOST = "audit.test"
T0 = 1_700_000_000_000


@dataclass(frozen=True, slots=True)
class Person:
    """An account with one device and its encryption key."""

    account_id: str
    name: str
    role: Role
    account_key: SigningKey
    device_key: SigningKey
    encryption_key: EncryptionKey

    @property
    def device_id(self) -> str:
        """The device's id (key id of its signing key)."""
        return key_id(self.device_key.public_bytes())

    def registration(self) -> SignedStatement:
        """The self-signed registration."""
        return sign_statement(
            self.account_key,
            Registration(
                account_id=self.account_id,
                name=self.name,
                role=self.role,
                account_key=b64e(self.account_key.public_bytes()),
                issued_at=T0,
            ),
        )

    def device_cert(self) -> SignedStatement:
        """The device certificate."""
        return sign_statement(
            self.account_key,
            DeviceCert(
                account_id=self.account_id,
                device_id=self.device_id,
                signing_key=b64e(self.device_key.public_bytes()),
                issued_at=T0,
            ),
        )

    def encryption_cert(self) -> SignedStatement:
        """The encryption key certificate."""
        public = self.encryption_key.public_bytes()
        return sign_statement(
            self.account_key,
            EncryptionKeyCert(
                account_id=self.account_id,
                device_id=self.device_id,
                key_id=key_id(public),
                public_key=b64e(public),
                issued_at=T0,
                not_after=T0 + 10**12,
            ),
        )

    def record(self) -> dict[str, Any]:
        """The account as the directory serves it (``GET /v1/accounts/{id}``)."""
        return {
            "account_id": self.account_id,
            "name": self.name,
            "role": self.role.value,
            "account_key": b64e(self.account_key.public_bytes()),
            "registration": self.registration().model_dump(mode="json"),
            "devices": [
                {"device_id": self.device_id, "cert": self.device_cert().model_dump(mode="json")}
            ],
        }

    def member(self, side: Side) -> RosterMember:
        """This person as a roster member on `side`."""
        return RosterMember(
            account_id=self.account_id,
            name=self.name,
            side=side,
            account_key=b64e(self.account_key.public_bytes()),
            devices=[
                RosterDevice(
                    device_id=self.device_id, signing_key=b64e(self.device_key.public_bytes())
                )
            ],
        )


def person(name: str, role: Role) -> Person:
    """A new person with fresh keys."""
    return Person(
        account_id=b64e(secrets.token_bytes(12)),
        name=name,
        role=role,
        account_key=SigningKey.generate(),
        device_key=SigningKey.generate(),
        encryption_key=EncryptionKey.generate(),
    )


@dataclass(slots=True)
class LogBuilder:
    """Leaves and what their actors signed, and the log key that signs checkpoints."""

    log_id: str
    origin: str
    log_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    entries: list[dict[str, Any]] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)

    @property
    def vkey(self) -> str:
        """The log's verifier key."""
        return format_verifier_key(self.origin, self.log_key.public_key().public_bytes_raw())

    def append(
        self,
        leaf_type: str,
        actor: str,
        signed: dict[str, Any],
        payload: bytes,
        signature: str,
        *,
        server_time: int | None = None,
    ) -> None:
        """Append one leaf recording `signed`."""
        index = len(self.entries)
        leaf = LogLeaf(
            origin=self.origin,
            index=index,
            type=leaf_type,
            actor_device=actor,
            server_time=T0 + index if server_time is None else server_time,
            payload_sha256=b64e(sha256(payload)),
            signature=signature,
        ).to_bytes()
        self.entries.append({"index": index, "leaf": b64e(leaf), "signed": signed})
        self.hashes.append(leaf_hash(leaf))

    def checkpoint(self, size: int) -> str:
        """The signed checkpoint of `size`."""
        root = root_from_leaf_hashes(self.hashes[:size])
        return sign_note(Checkpoint(self.origin, size, root).to_text(), self.origin, self.log_key)

    def bundle(
        self,
        *,
        sizes: Iterable[int] = (),
        accounts: dict[str, dict[str, Any]] | None = None,
        witnesses: Iterable[str] = (),
        cosigned: Iterable[str] = (),
    ) -> AuditBundle:
        """The bundle: the newest checkpoint (with `cosigned` lines), the `sizes`, every 256."""
        size = len(self.entries)
        every = set(range(256, size, 256)) | {s for s in sizes if 0 < s < size}
        notes = [self.checkpoint(s) for s in sorted(every)]
        notes.append(self.checkpoint(size) + "".join(cosigned))
        return AuditBundle(
            log_id=self.log_id,
            origin=self.origin,
            log_vkey=self.vkey,
            exported_at=T0 + 10**6,
            checkpoints=notes,
            witnesses=list(witnesses),
            accounts=accounts or {},
            entries=self.entries,
        )

    def write_tiled(self, path: Path, **options: Any) -> TiledBundle:
        """The same bundle as `bundle(**options)`, written tiled to `path`."""
        bundle = self.bundle(**options)
        return write_tiled(path, bundle)


def write_tiled(path: Path, bundle: AuditBundle) -> TiledBundle:
    """Write a JSON bundle's content as a tiled bundle at `path`."""
    manifest = TiledManifest(
        log_id=bundle.log_id,
        origin=bundle.origin,
        log_vkey=bundle.log_vkey,
        exported_at=bundle.exported_at,
        size=len(bundle.entries),
        checkpoints=bundle.checkpoints[:-1],
        witnesses=bundle.witnesses,
    )
    with path.open("wb") as out:
        writer = TiledWriter(out, manifest, bundle.checkpoints[-1])
        for entry in bundle.entries:
            writer.add(b64d(entry["leaf"]), signed_bytes_of(entry["signed"]))
        writer.finish(bundle.accounts)
    return open_tiled(path)


@dataclass(slots=True)
class Room:
    """A synthetic room log: mediator Mona, Alice on side a, Bob on side b."""

    log: LogBuilder
    mona: Person
    alice: Person
    bob: Person
    rosters: list[tuple[Roster, SignedStatement]]
    template: Envelope
    fresh_wraps: bool = False
    """Give each message wraps of its own (random bytes), as a real log has."""

    def bundle(self, **options: Any) -> AuditBundle:
        """The room's bundle, with Mona's directory record."""
        return self.log.bundle(accounts={self.mona.account_id: self.mona.record()}, **options)

    def write_tiled(self, path: Path, **options: Any) -> TiledBundle:
        """The room's bundle, written tiled to `path`."""
        return write_tiled(path, self.bundle(**options))

    def send(self, sender: Person, *, message_id: str | None = None) -> None:
        """Append a message by `sender` sealed to the newest roster."""
        roster = self.rosters[-1][0]
        header = self.template.header.model_copy(
            update={
                "message_id": message_id or b64e(secrets.token_bytes(16)),
                "sender_device": sender.device_id,
                "roster_version": roster.version,
                "sent_at": T0 + len(self.log.entries),
            }
        )
        wraps = dict(self.template.wraps)
        if self.fresh_wraps:  # as real wraps are: random, one set per message
            wraps = {d: b64e(secrets.token_bytes(len(b64d(w)))) for d, w in wraps.items()}
        data = signed_bytes(header, wraps)
        signature = b64e(sender.device_key.sign(SigLabel.ENVELOPE, data))
        signed = {
            "header": header.model_dump(mode="json"),
            "wraps": wraps,
            "signature": signature,
        }
        self.log.append("message", sender.device_id, signed, data, signature)

    def add_roster(self, signer: Person, members: list[RosterMember]) -> None:
        """Append the next roster version, signed by `signer`'s device."""
        previous = self.rosters[-1] if self.rosters else None
        roster = Roster(
            room_id=self.log.log_id,
            version=1 if previous is None else previous[0].version + 1,
            prev_hash=None if previous is None else b64e(previous[1].body_hash()),
            title="Exchange talks",
            members=members,
            signer_device=signer.device_id,
            issued_at=T0 + len(self.log.entries),
        )
        signed = sign_statement(signer.device_key, roster)
        self.rosters.append((roster, signed))
        self.log.append(
            "roster",
            roster.signer_device,
            signed.model_dump(mode="json"),
            _canonical_body(signed),
            signed.signature,
        )


def _canonical_body(signed: SignedStatement) -> bytes:
    return canonical_json(signed.body)


def room(*, messages: int = 5, fresh_wraps: bool = False) -> Room:
    """A room with three roster versions, then `messages` messages from all three
    (with wraps of their own if `fresh_wraps`, else all the template's)."""
    mona = person("Mona", Role.MEDIATOR)
    alice = person("Alice", Role.PARTY)
    bob = person("Bob", Role.PARTY)
    room_id = secrets.token_hex(16)
    everyone = [mona, alice, bob]
    template = seal_envelope(
        content={"type": "text", "text": "template"},
        room_id=room_id,
        channel="plenary",
        roster_version=3,
        sender_device=mona.device_id,
        sender_key=mona.device_key,
        recipients=[Recipient(p.device_id, p.encryption_key.public_bytes()) for p in everyone],
        sent_at=T0,
    )
    built = Room(
        LogBuilder(room_id, room_origin(HOST, room_id)), mona, alice, bob, [], template, fresh_wraps
    )
    built.add_roster(mona, [mona.member(Side.MEDIATOR)])
    built.add_roster(mona, [mona.member(Side.MEDIATOR), alice.member(Side.A)])
    built.add_roster(mona, [mona.member(Side.MEDIATOR), alice.member(Side.A), bob.member(Side.B)])
    for number in range(messages):
        built.send(everyone[number % 3])
    return built


def directory(*, people: int = 3) -> tuple[LogBuilder, list[Person]]:
    """A directory log: each person's registration, device and encryption key."""
    log = LogBuilder("directory", directory_origin(HOST))
    everyone = [person(f"Person {n}", Role.PARTY) for n in range(people)]
    for someone in everyone:
        actor = key_id(someone.account_key.public_bytes())
        for leaf_type, signed in (
            ("registration", someone.registration()),
            ("device", someone.device_cert()),
            ("encryption-key", someone.encryption_cert()),
        ):
            log.append(
                leaf_type,
                actor,
                signed.model_dump(mode="json"),
                _canonical_body(signed),
                signed.signature,
            )
    return log, everyone


@dataclass(frozen=True, slots=True)
class WitnessKey:
    """A witness's cosigning key."""

    name: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def vkey(self) -> str:
        """Its type 0x04 verifier key."""
        return format_verifier_key(
            self.name, self.key.public_key().public_bytes_raw(), SIG_COSIGNATURE_V1
        )

    def cosign(self, note: str, timestamp: int = 1_700_000_000) -> str:
        """Its cosignature line for a signed checkpoint note."""
        text, _, _ = note.partition("\n\n")
        return cosign(text + "\n", self.name, self.key, timestamp)
