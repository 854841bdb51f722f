"""The issuer's dossiers at rest: ``$PARLEY_HOME/dossiers.sealed``, beside the keystore.

    {"format": "parley-dossiers", "v": 1, "nonce": b64, "ciphertext": b64}

``ciphertext`` is ChaCha20-Poly1305 of the canonical JSON of a `DossierBook`
under a key derived with HKDF-SHA256 from the device's private signing key
(only in the unlocked keystore), with the label ``parley/v1/dossier-store``
and the device id as info, and the label and device id as associated data
(`sealed_file.SealedFile`). So the file opens only with the keystore's
passphrase, like the keystore, and a file copied from another device or
modified is refused as one error.

The book holds each committed dossier's issuance (the issuer JWT and every
Disclosure: the values, which never leave this machine unless disclosed)
and a log of every disclosure: when, to which channel and members, in
which phase, of which records and fields. Every change is a read-modify-write
under the profile's lock, like the keystore's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from client_sdk.client.sealed_file import SealedFile
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.models import Ident, Int, Name, WireModel

STORE_FILENAME = "dossiers.sealed"


class StoredDossier(WireModel):
    """A dossier this device committed: what it takes to disclose from it later."""

    dossier_id: Ident
    room_id: Ident
    title: Name
    records: Int = Field(ge=1)
    decoys: Int = Field(ge=0)
    fields: list[str]
    commit_seq: Int = Field(ge=1)
    leaf_index: Int = Field(ge=0)
    committed_at: Int
    """The server's time of the commit event (ms)."""
    issuance: str
    """The SD-JWT as issued: the JWT and every Disclosure (`IssuedDossier.issuance`)."""


class DisclosureLog(WireModel):
    """One disclosure sent: what, to whom, when and in which phase."""

    dossier_id: Ident
    room_id: Ident
    seq: Int = Field(ge=1)
    channel: str
    to: list[str]
    """The channel's members (other than the issuer) when it was sent, by name."""
    phase: str | None
    records: list[Int]
    fields: list[str]
    sent_at: Int
    """The server's time of the disclosure event (ms)."""


class DossierBook(WireModel):
    """Everything in the store."""

    dossiers: list[StoredDossier] = Field(default_factory=list)
    disclosures: list[DisclosureLog] = Field(default_factory=list)


class DossierStore:
    """The sealed dossier book of one profile and device."""

    def __init__(self, home: Path, device_id: str, device_key: SigningKey) -> None:
        """Open the store in `home` for the device whose private key is `device_key`."""
        self._file = SealedFile(
            home,
            STORE_FILENAME,
            name="parley-dossiers",
            label=b"parley/v1/dossier-store",
            model=DossierBook,
            device_id=device_id,
            device_key=device_key,
        )
        self.path = self._file.path

    def read(self) -> DossierBook:
        """The book as stored (empty if nothing was committed on this profile yet)."""
        return self._file.read()

    def update(self, change: Callable[[DossierBook], DossierBook]) -> DossierBook:
        """Apply `change` to the stored book under the profile's lock and save it."""
        return self._file.update(change)

    def add_dossier(self, dossier: StoredDossier) -> None:
        """Keep a newly committed dossier."""
        self.update(lambda book: book.model_copy(update={"dossiers": [*book.dossiers, dossier]}))

    def add_disclosure(self, entry: DisclosureLog) -> None:
        """Log a disclosure sent."""
        self.update(
            lambda book: book.model_copy(update={"disclosures": [*book.disclosures, entry]})
        )

    def dossier(self, dossier_id: str) -> StoredDossier | None:
        """A dossier committed from this device, by id."""
        return next((d for d in self.read().dossiers if d.dossier_id == dossier_id), None)
