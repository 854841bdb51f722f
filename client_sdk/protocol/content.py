"""What an envelope's (encrypted) content says: one JSON object, typed by ``type``.

The server never sees content, so it needs no change for a new kind; every
reader parses it here, strictly (`parse_content`): a known ``type`` with a
malformed body is an error, an unknown ``type`` is `UnknownContent`, shown
as such and never guessed at.

- ``text``: a message (``{"type": "text", "text": ...}``);
- ``relay``: a mediator's relay of a message (checked by the reader);
- ``dossier-commit``: the issuer-signed JWT of a dossier (digests only): the
  commit event's log leaf is the dossier's commitment. It says no record
  count: with decoys, the JWT hides it, and so must the message;
- ``dossier-disclosure``: a presentation of chosen records and fields of a
  dossier committed earlier in the room (`commit_seq`), in a named phase;
- ``document``: an encrypted file stored as a blob (`protocol.documents`).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field, ValidationError

from client_sdk.protocol.documents import DOCUMENT, DocumentContent
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.models import Ident, Int, Name, WireModel

TEXT: Final = "text"
RELAY: Final = "relay"
DOSSIER_COMMIT: Final = "dossier-commit"
DOSSIER_DISCLOSURE: Final = "dossier-disclosure"
MAX_JWT_CHARS = 1_000_000
MAX_PRESENTATION_CHARS = 1_000_000
"""An envelope is at most the server's request limit (1 MiB by default) anyway."""


class DossierCommit(WireModel):
    """A dossier's commitment: its issuer-signed JWT, posted in the room's plenary."""

    type: Literal["dossier-commit"] = DOSSIER_COMMIT
    dossier_id: Ident
    title: Name
    jwt: str = Field(min_length=1, max_length=MAX_JWT_CHARS)


class DossierDisclosure(WireModel):
    """A presentation of a committed dossier, in one phase of its release."""

    type: Literal["dossier-disclosure"] = DOSSIER_DISCLOSURE
    dossier_id: Ident
    commit_seq: Int = Field(ge=1)
    """The room event that carries the commitment (its leaf index is one less)."""
    phase: str | None = Field(default=None, min_length=1, max_length=200)
    presentation: str = Field(min_length=1, max_length=MAX_PRESENTATION_CHARS)


class UnknownContent(WireModel):
    """Content of a type this SDK does not know (or a text or relay, kept as sent)."""

    model_config = WireModel.model_config | {"extra": "allow"}
    type: str


Content = DossierCommit | DossierDisclosure | DocumentContent | UnknownContent
_TYPED: Final[dict[str, type[DossierCommit] | type[DossierDisclosure] | type[DocumentContent]]] = {
    DOSSIER_COMMIT: DossierCommit,
    DOSSIER_DISCLOSURE: DossierDisclosure,
    DOCUMENT: DocumentContent,
}


def parse_content(content: dict[str, Any]) -> Content:
    """The typed content of a decrypted envelope; `ProtocolError` if a known type is
    malformed. Texts and relays stay `UnknownContent` here: the reader handles them."""
    kind = content.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("the content has no type")
    model = _TYPED.get(kind)
    if model is None:
        return UnknownContent.model_validate(content)
    try:
        return model.model_validate(content)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ProtocolError(f"malformed {kind} content: {where}: {error['msg']}") from exc


def content_type(content: dict[str, Any]) -> str:
    """The content's ``type`` as sent (``"unknown"`` if it has none)."""
    kind = content.get("type")
    return kind if isinstance(kind, str) else "unknown"
