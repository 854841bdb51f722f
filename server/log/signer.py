"""The server's Ed25519 log key, which signs every checkpoint as a C2SP signed note.

One key serves every log; each log's checkpoints are signed under the log's
origin as key name (``HOST/rooms/ROOM_ID``, ``HOST/directory``), so each log
has its own verifier key string. The key comes from ``PARLEY_LOG_SIGNING_KEY``
(a C2SP signer key string; replicas must share it) or is generated on first
start into ``DATA_DIR/log-signing-key`` (mode 0600).

The generated key is written whole or not at all: into a temporary file,
fsync'd, then linked into place (which fails if another process got there
first: its key is used) and the directory fsync'd, before it signs anything.
A process killed while writing it leaves no key file, so the next start
makes one; never an empty file that stops every later start, and never a
checkpoint signed by a key a power cut could take back.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.note import (
    Checkpoint,
    format_signer_key,
    format_verifier_key,
    parse_signer_key,
    sign_note,
)

KEY_FILE = "log-signing-key"
_STORED_NAME = "parley-log-key"


class CheckpointSigner:
    """Signs checkpoints of any log with the server's log key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes_raw()

    @classmethod
    def load(cls, *, signer_key: str | None, data_dir: Path) -> CheckpointSigner:
        """The configured key, or the one in the data directory (made on first start)."""
        if signer_key:
            return cls(parse_signer_key(signer_key).private_key)
        path = data_dir / KEY_FILE
        if not path.exists():
            _generate(path)
        return cls(parse_signer_key(path.read_text().strip()).private_key)

    def statement_key(self) -> SigningKey:
        """The same key for the statements the operator signs (a revocation), under
        their own signature label: Parley's labelled signatures never collide with
        a signed note's, which begin with the note's text."""
        return SigningKey(self._key)

    def vkey(self, origin: str) -> str:
        """The verifier key string of the log with this origin."""
        return format_verifier_key(origin, self.public_key)

    def sign(self, checkpoint: Checkpoint) -> str:
        """The checkpoint as a signed note, under its origin as key name."""
        return sign_note(checkpoint.to_text(), checkpoint.origin, self._key)


def write_new_key(path: Path) -> bool:
    """Write a new key to `path` durably; False (and nothing written) if one is there."""
    if path.exists():
        return False
    return _generate(path)


def _generate(path: Path) -> bool:
    """Write a new key to `path` durably, unless another process wrote one first (then
    False)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = format_signer_key(_STORED_NAME, Ed25519PrivateKey.generate()) + "\n"
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process's key stands
            return False
    finally:
        os.unlink(temporary)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True
