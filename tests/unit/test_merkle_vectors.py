"""The transparency-dev RFC 9162 vectors: accept exactly the ones without ``wantErr``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.merkle import verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc9162"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(value, dict)
    return value


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(h) for h in value or []]


def _id(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def test_every_vector_file_is_collected() -> None:
    # A broken glob must not pass silently with nothing to check.
    assert (len(INCLUSION), len(CONSISTENCY)) == (98, 98)


def test_vectors_carry_their_license() -> None:
    assert "Apache License" in (VECTORS / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector_is_accepted_exactly_when_valid(path: Path) -> None:
    v = _load(path)

    def verify() -> None:
        verify_inclusion(
            _b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b64(v["root"])
        )

    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify()
    else:
        verify()


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector_is_accepted_exactly_when_valid(path: Path) -> None:
    v = _load(path)

    def verify() -> None:
        verify_consistency(
            v["size1"], v["size2"], _proof(v["proof"]), _b64(v["root1"]), _b64(v["root2"])
        )

    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify()
    else:
        verify()
