"""A witness's state file: for each log it follows, the pinned log key and the newest
checkpoint it cosigned.

``$PARLEY_HOME/witness.json`` (canonical JSON)::

    {"version": 1,
     "logs": {"ORIGIN": {"vkey": "ORIGIN+hash+key", "size": 5, "root": b64url, "note": "...",
                         "cosignature": "— NAME ..."}}}

Replaced atomically (temporary file, fsync, `os.replace`, fsync of the
directory) and changed only under an exclusive lock on ``witness.json.lock``.
A damaged file is an error, never a fresh start: a witness that forgets what
it cosigned can be made to cosign a fork.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from client_sdk._files import write_atomically
from client_sdk.protocol.encoding import b64d, b64e, canonical_json, parse_json_object
from client_sdk.protocol.errors import ProtocolError, WitnessStateError
from client_sdk.protocol.models import B64, Int, WireModel

WITNESS_STATE_FILENAME: Final = "witness.json"
_STATE_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class WitnessedLog:
    """A log the witness follows: its pinned key and the newest checkpoint it cosigned."""

    origin: str
    vkey: str
    size: int = 0
    root: bytes | None = None
    note: str | None = None
    """The cosigned checkpoint note as submitted (None until the first cosignature)."""
    cosignature: str | None = None
    """The cosignature line returned for it (absent from files of before it was kept)."""


class _StoredLog(WireModel):
    vkey: str
    size: Int
    root: B64 | None
    note: str | None
    cosignature: str | None = None


class _StoredState(WireModel):
    version: Int
    logs: dict[str, _StoredLog]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the state file at `path` (threads and processes alike)."""
    # flock conflicts between separate opens, so threads and processes both serialize here.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_witness_state(path: Path) -> dict[str, WitnessedLog]:
    """The logs a witness state file records, by origin (none if there is no file).

    Raises `WitnessStateError` if the file is unreadable or damaged.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise WitnessStateError(f"cannot read the witness state {path}: {exc.strerror}") from exc
    try:
        stored = _StoredState.model_validate(parse_json_object(data))
        if stored.version != _STATE_VERSION:
            raise ProtocolError(f"unknown version {stored.version}")
        return {
            origin: WitnessedLog(
                origin=origin,
                vkey=log.vkey,
                size=log.size,
                root=None if log.root is None else b64d(log.root),
                note=log.note,
                cosignature=log.cosignature,
            )
            for origin, log in stored.logs.items()
        }
    except (ProtocolError, ValidationError) as exc:
        # Never start afresh: a witness that forgets what it cosigned can be made to fork.
        raise WitnessStateError(f"the witness state {path} is damaged: {exc}") from exc


def write_witness_state(path: Path, logs: dict[str, WitnessedLog]) -> None:
    """Replace the state file atomically (the caller holds `locked`)."""
    stored = _StoredState(
        version=_STATE_VERSION,
        logs={
            origin: _StoredLog(
                vkey=log.vkey,
                size=log.size,
                root=None if log.root is None else b64e(log.root),
                note=log.note,
                cosignature=log.cosignature,
            )
            for origin, log in logs.items()
        },
    )
    data = canonical_json(stored.model_dump(mode="json"))
    write_atomically(path, data)
