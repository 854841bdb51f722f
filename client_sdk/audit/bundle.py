"""The JSON audit bundle (format v1): one JSON document (optionally gzipped) that verifies
a log. `parley audit export` now writes the tiled bundle (`client_sdk.audit.archive`);
this format is still read, and written on request (``--format json``).

    {"format": "parley-audit-bundle/v1",
     "log_id": "...", "origin": "HOST/rooms/ID", "log_vkey": "ORIGIN+hash+key",
     "exported_at": ms,
     "checkpoints": ["signed note with cosignature lines", ...],   ascending sizes
     "witnesses": ["witness verifier key (type 0x04)", ...],
     "accounts": {"ACCOUNT_ID": directory record, ...},          roster signers
     "entries": [{"index": 0, "leaf": b64url, "signed": {...}}, ...]}

``checkpoints`` holds the newest checkpoint, the newest cosigned one, the ones
the exporting profile verified or witnessed before, and one every few hundred
entries so that a changed leaf is located offline too. ``signed`` is what the
actor signed: a roster statement ``{body, signature}``, an envelope without
its ciphertext ``{header, wraps, signature}``, or a directory statement.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, ValidationError

from client_sdk.audit.archive import TiledBundle, is_tiled, open_tiled
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.models import Ident, Int, WireModel

BUNDLE_FORMAT: Final = "parley-audit-bundle/v1"
_GZIP_MAGIC = b"\x1f\x8b"
MAX_BUNDLE_BYTES = 4 * 1024**3


class AuditBundle(WireModel):
    """A self-contained copy of one log, as `parley audit export` writes it."""

    format: Literal["parley-audit-bundle/v1"] = BUNDLE_FORMAT
    log_id: Ident
    origin: str = Field(min_length=1, max_length=300)
    log_vkey: str
    exported_at: Int
    checkpoints: list[str] = Field(min_length=1)
    witnesses: list[str] = Field(default_factory=list)
    accounts: dict[Ident, dict[str, Any]] = Field(default_factory=dict)
    entries: list[dict[str, Any]]

    def to_bytes(self, *, compress: bool = False) -> bytes:
        """The bundle as JSON bytes, gzipped if `compress`."""
        data = json.dumps(self.model_dump(mode="json"), separators=(",", ":")).encode()
        return gzip.compress(data, compresslevel=6, mtime=0) if compress else data


def write_bundle(bundle: AuditBundle, path: Path, *, compress: bool | None = None) -> None:
    """Write `bundle` to `path`; gzip when `compress`, or by default when it ends in ``.gz``."""
    gzipped = path.suffix == ".gz" if compress is None else compress
    path.write_bytes(bundle.to_bytes(compress=gzipped))


def parse_bundle(data: bytes) -> AuditBundle:
    """Parse bundle bytes (JSON or gzipped JSON); raise `ProtocolError` if it is not one."""
    try:
        if data[:2] == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                data = unzipped.read(MAX_BUNDLE_BYTES + 1)
            if len(data) > MAX_BUNDLE_BYTES:
                raise ProtocolError("the bundle is too large")
        value = json.loads(data)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not an audit bundle: {exc}") from exc
    if not isinstance(value, dict) or value.get("format") != BUNDLE_FORMAT:
        raise ProtocolError(f"not an audit bundle (format {BUNDLE_FORMAT})")
    try:
        return AuditBundle.model_validate(value)
    except ValidationError as exc:
        raise ProtocolError(f"malformed audit bundle: {exc.errors()[0]['msg']}") from exc


def read_bundle(path: Path) -> AuditBundle | TiledBundle:
    """Read a bundle file, either format (told by its content): a tiled bundle's manifest
    and checkpoint only, its entries staying on disk; a JSON bundle whole. Raises
    `ProtocolError` if it is not one, `OSError` if unreadable."""
    with path.open("rb") as file:
        head = file.read(4096)
    if is_tiled(head):
        return open_tiled(path)
    return parse_bundle(path.read_bytes())
