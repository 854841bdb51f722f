"""Message content parsed strictly by type; unknown types kept as such."""

from __future__ import annotations

import pytest

from client_sdk.protocol.content import (
    DossierCommit,
    DossierDisclosure,
    UnknownContent,
    content_type,
    parse_content,
)
from client_sdk.protocol.errors import ProtocolError


def test_a_commit_and_a_disclosure_parse_into_their_models() -> None:
    commit = parse_content(
        {"type": "dossier-commit", "dossier_id": "d1", "title": "Roster", "jwt": "a.b.c"}
    )
    disclosure = parse_content(
        {"type": "dossier-disclosure", "dossier_id": "d1", "commit_seq": 4, "presentation": "x~"}
    )

    assert isinstance(commit, DossierCommit)
    assert commit.title == "Roster"
    assert isinstance(disclosure, DossierDisclosure)
    assert disclosure.phase is None


def test_an_unknown_type_is_kept_as_such() -> None:
    parsed = parse_content({"type": "sealed-offer", "anything": [1, 2]})

    assert isinstance(parsed, UnknownContent)
    assert parsed.type == "sealed-offer"
    assert content_type({"type": "sealed-offer"}) == "sealed-offer"
    assert content_type({}) == "unknown"


@pytest.mark.parametrize(
    "content",
    [
        {"type": "dossier-commit", "dossier_id": "d1", "title": "Roster"},
        {"type": "dossier-commit", "dossier_id": "d1", "title": "R", "jwt": "x", "extra": 1},
        {"type": "dossier-disclosure", "dossier_id": "d1", "commit_seq": "4", "presentation": "x"},
        {"type": "dossier-disclosure", "dossier_id": "d 1", "commit_seq": 4, "presentation": "x"},
    ],
)
def test_a_malformed_known_type_is_an_error(content: dict[str, object]) -> None:
    with pytest.raises(ProtocolError, match="malformed dossier-"):
        parse_content(content)


def test_content_without_a_type_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="no type"):
        parse_content({"text": "hello"})
