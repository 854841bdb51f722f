"""The keystore file: a plaintext header and the sealed state.

    {"version": 4,
     "kdf": {"name": "scrypt", "salt": b64, "n": 32768, "r": 8, "p": 1},
     "nonce": b64, "ciphertext": b64}

``ciphertext`` is ChaCha20-Poly1305, under the 32-byte scrypt key of the
passphrase, of the RFC 8785 canonical JSON of the state; the associated data
is a label and the canonical ``{"version", "kdf"}`` header, so nobody can swap
the version or the parameters without the passphrase. A wrong passphrase and a
modified file are the same `KeystoreError`. Version 1 files (written before
the state had typed trust anchors) have the same layout and another label;
`migrate` reads their state. Version 2 files have the layout and state of
version 3, each with its own label; version 3 stores a new X-Wing key as its
32-byte seed, which a version-2 reader would refuse, hence the new number.
Version 4 has the layout of version 3 and holds several server URLs
(`migrate` turns the one URL of versions 2 and 3 into that list).
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import ValidationError

from client_sdk.protocol.encoding import b64d, b64e, canonical_json, parse_json_object
from client_sdk.protocol.errors import KeystoreError, ProtocolError
from client_sdk.protocol.models import B64, Int, WireModel

__all__ = [
    "DEFAULT_SCRYPT_N",
    "KEYSTORE_VERSION",
    "Header",
    "KdfParams",
    "new_header",
    "open_sealed",
    "seal",
]

KEYSTORE_VERSION: Literal[4] = 4
"""The file format this code writes (it reads 1 to 4; older ones are migrated on open)."""
DEFAULT_SCRYPT_N = 2**15
"""scrypt's cost of a new keystore (with r=8, p=1): 32 MiB and a fraction of a second."""
SCRYPT_R = 8
SCRYPT_P = 1
# Bounds on parameters read from the file: a tampered file must not make us
# spend a gigabyte or a minute before the AEAD can reject it.
_MIN_SCRYPT_N = 2**10
_MAX_SCRYPT_N = 2**20
_MAX_SCRYPT_R = 32
_MAX_SCRYPT_MEMORY = 2**30  # scrypt needs 128 * n * r bytes
_MAX_SCRYPT_P = 16
_SALT_LEN = 16
_NONCE_LEN = 12
_AAD_LABELS = {
    1: b"parley/v1/keystore\x00",
    2: b"parley/v2/keystore\x00",
    3: b"parley/v3/keystore\x00",
    4: b"parley/v4/keystore\x00",
}


class KdfParams(WireModel):
    """The scrypt parameters and salt the file key is derived with."""

    name: Literal["scrypt"]
    salt: B64
    n: Int
    r: Int
    p: Int


class Header(WireModel):
    """What the file shows in the clear; all of it is bound to the ciphertext."""

    version: Literal[1, 2, 3, 4]
    kdf: KdfParams


class _StoredFile(Header):
    nonce: B64
    ciphertext: B64


def new_header(scrypt_n: int) -> Header:
    """A header of the current version with a fresh salt."""
    kdf = KdfParams(
        name="scrypt", salt=b64e(os.urandom(_SALT_LEN)), n=scrypt_n, r=SCRYPT_R, p=SCRYPT_P
    )
    _check_kdf(kdf)
    return Header(version=KEYSTORE_VERSION, kdf=kdf)


def derive_key(passphrase: str, kdf: KdfParams) -> bytes:
    """The 32-byte file key of `passphrase`."""
    _check_kdf(kdf)
    # NFC, so the same passphrase typed on another system derives the same key.
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Scrypt(salt=b64d(kdf.salt), length=32, n=kdf.n, r=kdf.r, p=kdf.p).derive(secret)


def read_header(path: Path, data: bytes) -> tuple[Header, bytes, bytes]:
    """Parse a file's bytes: its header, nonce and ciphertext; `KeystoreError` if damaged."""
    try:
        document = parse_json_object(data)
    except ProtocolError as exc:
        raise KeystoreError(f"the keystore at {path} is damaged") from exc
    if document.get("version") not in _AAD_LABELS:
        raise KeystoreError(
            f"the keystore at {path} has version {document.get('version')!r}; "
            f"this client reads versions 1 to {KEYSTORE_VERSION}"
        )
    try:
        stored = _StoredFile.model_validate(document)
        nonce, ciphertext, salt = b64d(stored.nonce), b64d(stored.ciphertext), b64d(stored.kdf.salt)
    except (ProtocolError, ValidationError) as exc:
        raise KeystoreError(f"the keystore at {path} is damaged") from exc
    if len(nonce) != _NONCE_LEN or len(salt) < _SALT_LEN:
        raise KeystoreError(f"the keystore at {path} is damaged")
    _check_kdf(stored.kdf)
    return Header(version=stored.version, kdf=stored.kdf), nonce, ciphertext


def open_sealed(
    path: Path, data: bytes, key: bytes, header: Header | None = None
) -> tuple[Header, dict[str, Any]]:
    """Decrypt a file's bytes with `key`: its header and state JSON.

    With `header`, the file must have been sealed under the same KDF
    parameters (the key was derived from them); anything else is `KeystoreError`.
    """
    found, nonce, ciphertext = read_header(path, data)
    if header is not None and found.kdf != header.kdf:
        raise KeystoreError(
            f"the keystore at {path} was replaced by one under another passphrase or salt; "
            "open it again"
        )
    try:
        plaintext = ChaCha20Poly1305(key).decrypt(nonce, ciphertext, _aad(found))
    except InvalidTag:
        raise KeystoreError(
            f"cannot open the keystore at {path}: wrong passphrase, or the file was modified"
        ) from None
    try:
        return found, parse_json_object(plaintext)
    except ProtocolError as exc:
        raise KeystoreError(f"the keystore at {path} holds a malformed state") from exc


def seal(header: Header, key: bytes, state: dict[str, Any]) -> bytes:
    """The file bytes of `state` under `key`, with a fresh nonce and the current header."""
    header = header.model_copy(update={"version": KEYSTORE_VERSION})
    try:
        plaintext = canonical_json(state)
    except ProtocolError as exc:
        raise KeystoreError(f"cannot save the keystore: {exc}") from exc
    nonce = os.urandom(_NONCE_LEN)
    stored = _StoredFile(
        version=header.version,
        kdf=header.kdf,
        nonce=b64e(nonce),
        ciphertext=b64e(ChaCha20Poly1305(key).encrypt(nonce, plaintext, _aad(header))),
    )
    return canonical_json(stored.model_dump(mode="json"))


def _aad(header: Header) -> bytes:
    return _AAD_LABELS[header.version] + canonical_json(header.model_dump(mode="json"))


def _check_kdf(kdf: KdfParams) -> None:
    n_ok = _MIN_SCRYPT_N <= kdf.n <= _MAX_SCRYPT_N and kdf.n & (kdf.n - 1) == 0
    r_ok = 1 <= kdf.r <= _MAX_SCRYPT_R and 128 * kdf.n * kdf.r <= _MAX_SCRYPT_MEMORY
    if not (n_ok and r_ok and 1 <= kdf.p <= _MAX_SCRYPT_P):
        raise KeystoreError(
            f"unsupported scrypt parameters n={kdf.n} r={kdf.r} p={kdf.p} "
            f"(n must be a power of two from {_MIN_SCRYPT_N} to {_MAX_SCRYPT_N})"
        )
