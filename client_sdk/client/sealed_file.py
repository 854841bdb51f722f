"""A profile's sealed side file: one model, kept beside the keystore, that opens only
with the unlocked keystore (the dossier store, the offer store).

    {"format": NAME, "v": 1, "nonce": b64, "ciphertext": b64}

``ciphertext`` is ChaCha20-Poly1305 of the canonical JSON of the model under a
key derived with HKDF-SHA256 from the device's private signing key, with the
file's label (``parley/v1/dossier-store``, ...) and the device id as info, and
the same bytes as associated data. A file copied from another device or
modified is refused as one `KeystoreError`. Every change is a
read-modify-write under the profile's lock, like the keystore's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field, ValidationError

from client_sdk._files import write_atomically
from client_sdk.keystore.lock import exclusive_lock
from client_sdk.protocol.encoding import b64d, b64e, canonical_json, parse_json_object
from client_sdk.protocol.errors import KeystoreError, ProtocolError
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.models import B64, Int, WireModel

M = TypeVar("M", bound=WireModel)
_NONCE_LEN = 12
_MAX_FILE_BYTES = 512 * 1024 * 1024


class _Sealed(WireModel):
    format: str
    v: Int
    nonce: B64
    ciphertext: str = Field(pattern=r"^[A-Za-z0-9_-]*$")


class SealedFile(Generic[M]):
    """One sealed model file of one profile and device."""

    def __init__(
        self,
        home: Path,
        filename: str,
        *,
        name: str,
        label: bytes,
        model: type[M],
        device_id: str,
        device_key: SigningKey,
    ) -> None:
        """The file `filename` in `home`, of format `name`, holding a `model`, sealed
        under the key `label` derives from the device's private key `device_key`."""
        self.path = home / filename
        self._home = home
        self._name = name
        self._model = model
        self._info = label + b"\x00" + device_id.encode()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self._info)
        self._aead = ChaCha20Poly1305(hkdf.derive(device_key.private_bytes()))

    def read(self) -> M:
        """The model as stored (empty if the file does not exist yet)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self._model()
        if len(data) > _MAX_FILE_BYTES:
            raise KeystoreError(f"{self.path} is too large to be a {self._name} file")
        try:
            sealed = _Sealed.model_validate(parse_json_object(data))
            if sealed.format != self._name or sealed.v != 1:
                raise ProtocolError(f"not a {self._name} file")
            plain = self._aead.decrypt(b64d(sealed.nonce), b64d(sealed.ciphertext), self._info)
            return self._model.model_validate(parse_json_object(plain))
        except (ProtocolError, ValidationError, InvalidTag, ValueError) as exc:
            raise KeystoreError(
                f"{self.path} cannot be opened with this device's key (damaged, or another "
                "device's)"
            ) from exc

    def update(self, change: Callable[[M], M]) -> M:
        """Apply `change` to the stored model under the profile's lock and save it."""
        with exclusive_lock(self._home):
            value = change(self.read())
            nonce = os.urandom(_NONCE_LEN)
            ciphertext = self._aead.encrypt(nonce, canonical_json(value.model_dump()), self._info)
            sealed = _Sealed(format=self._name, v=1, nonce=b64e(nonce), ciphertext=b64e(ciphertext))
            write_atomically(self.path, canonical_json(sealed.model_dump()))
        return value
