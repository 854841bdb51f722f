"""What the SDK returns about dossiers: commits and disclosures made, and disclosures
received (verified, or refused with the reason)."""

from __future__ import annotations

from dataclasses import dataclass

from client_sdk.protocol.sdjwt import VerifiedRecord


@dataclass(frozen=True, slots=True)
class CommittedDossier:
    """A dossier this device committed: its id and the commit event (its commitment)."""

    dossier_id: str
    room_id: str
    title: str
    seq: int
    leaf_index: int
    records: int
    decoys: int


@dataclass(frozen=True, slots=True)
class SentDisclosure:
    """A disclosure this device sent."""

    dossier_id: str
    room_id: str
    seq: int
    leaf_index: int
    channel: str
    phase: str | None
    records: tuple[int, ...]
    fields: tuple[str, ...]
    presentation: str
    """The compact SD-JWT sent (what ``--out`` writes)."""


@dataclass(frozen=True, slots=True)
class ReceivedDisclosure:
    """A disclosure event of the room as this device checked it.

    `refused` is None only if it verified: then `records` holds the disclosed
    records. A refused disclosure has no records, only the reason.
    """

    room_id: str
    seq: int
    channel: str
    dossier_id: str
    phase: str | None
    sender_account_id: str
    sender_name: str
    disclosed_at: int
    """The server's time of the disclosure event (ms)."""
    commit_seq: int
    title: str | None
    committed_at: int | None
    """The server's time of the commit event (ms), when it was found."""
    issuer_key: bytes | None
    """The issuer's Ed25519 device key, from the verified directory."""
    records: tuple[VerifiedRecord, ...]
    refused: str | None

    @property
    def verified(self) -> bool:
        """Whether every check passed."""
        return self.refused is None

    @property
    def field_names(self) -> list[str]:
        """Every field disclosed in some record, sorted."""
        return sorted({name for record in self.records for name in record.fields})


@dataclass(frozen=True, slots=True)
class SeenCommit:
    """A dossier commitment read in the room (its JWT is checked when a disclosure
    refers to it)."""

    room_id: str
    seq: int
    dossier_id: str
    title: str
    sender_account_id: str
    sender_name: str
    sender_device: str
    committed_at: int
    jwt: str
