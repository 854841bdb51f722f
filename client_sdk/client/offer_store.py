"""This device's offers at rest (docs/design.md §7): ``$PARLEY_HOME/offers.sealed``,
beside the keystore, sealed like the dossier store (`sealed_file.SealedFile`, label
``parley/v1/offer-store``), so an opening (salt, value, note) outlives the process that
committed it and opens only with the keystore's passphrase.

An offer is kept before its commitment is submitted, so a process that dies in
between never leaves a logged commitment whose opening was lost.
"""

from __future__ import annotations

from pathlib import Path

from client_sdk.client.offer_models import KeptOffer, OfferBook
from client_sdk.client.sealed_file import SealedFile
from client_sdk.protocol.keys import SigningKey

STORE_FILENAME = "offers.sealed"


class OfferStore:
    """The sealed offer book of one profile and device."""

    def __init__(self, home: Path, device_id: str, device_key: SigningKey) -> None:
        """Open the store in `home` for the device whose private key is `device_key`."""
        self._file = SealedFile(
            home,
            STORE_FILENAME,
            name="parley-offers",
            label=b"parley/v1/offer-store",
            model=OfferBook,
            device_id=device_id,
            device_key=device_key,
        )
        self.path = self._file.path

    def keep(self, offer: KeptOffer) -> None:
        """Keep an offer about to be committed."""
        self._file.update(lambda book: book.model_copy(update={"offers": [*book.offers, offer]}))

    def find(self, room_id: str, round_id: str, commitment: str) -> KeptOffer | None:
        """The offer kept for this commitment, if this device made it."""
        return next(
            (
                o
                for o in self._file.read().offers
                if (o.room_id, o.round_id, o.commitment) == (room_id, round_id, commitment)
            ),
            None,
        )
