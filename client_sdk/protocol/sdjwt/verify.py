"""Verifying a dossier presentation: RFC 9901 §7.1 and §7.3 without key binding,
strict and fail-closed, plus what the dossier profile adds.

Refused, each with a reason (`VerificationError`):

- an algorithm other than EdDSA, a ``typ`` other than the dossier's, a
  signature that does not verify with the issuer's key (a foreign issuer);
- an issuer-signed JWT that is not byte for byte the committed one, or one
  committed for another room, or naming another issuer;
- a trailing KB-JWT, a malformed or repeated Disclosure (§4);
- a digest that occurs twice anywhere (§7.1 step 4), a Disclosure that no
  digest references, directly or through the record it belongs to (step 5);
- a Disclosure of the wrong shape for where its digest sits (two elements
  for a record, three for a field), a reserved or repeated field name
  (step 3.3.2), a field value nested deeper than the format allows.

The result keeps each record's number, its position in the signed
``records`` array, so a recipient can say "record 17: name, service_number";
a Disclosure's place in the presentation carries no meaning, which is why
reordering them changes nothing and cannot move a value to another record.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, ValidationError

from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.models import Ident, Int, Name, WireModel
from client_sdk.protocol.sdjwt.disclosure import (
    DIGEST_PATTERN,
    SD_KEY,
    Disclosure,
    parse_disclosure,
    split_sd_jwt,
)
from client_sdk.protocol.sdjwt.issue import DOSSIER_TYP, IssuedDossier
from client_sdk.protocol.sdjwt.jws import verify_jwt
from client_sdk.protocol.sdjwt.records import check_field_value

MAX_PRESENTATION_CHARS = 32 * 1024 * 1024
Digest = str


class _Element(WireModel):
    digest: str = Field(alias="...", pattern=DIGEST_PATTERN.pattern)


class DossierClaims(WireModel):
    """The always-visible claims of a dossier's issuer-signed JWT."""

    iss: Ident
    iat: Int = Field(ge=0)
    jti: Ident
    room_id: Ident
    title: Name
    v: Int = Field(ge=1, le=1)
    records: list[_Element] = Field(min_length=1)
    sd_alg: Literal["sha-256"] = Field(alias="_sd_alg")


@dataclass(frozen=True, slots=True)
class VerifiedRecord:
    """One disclosed record: its 1-based number and the fields disclosed of it."""

    number: int
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class VerifiedDossier:
    """A presentation that passed every check."""

    jwt: str
    dossier_id: str
    issuer: str
    device_id: str | None
    room_id: str
    title: str
    issued_at: int
    records: tuple[VerifiedRecord, ...]
    positions: int
    """Elements of the signed ``records`` array: records plus any decoys."""


def check_committed(jwt: str, committed_jwt: str) -> None:
    """Raise `VerificationError` unless `jwt` is byte for byte `committed_jwt`."""
    if not hmac.compare_digest(jwt.encode("utf-8"), committed_jwt.encode("utf-8")):
        raise VerificationError("the issuer-signed JWT is not the one committed in the log")


def _body_digests(value: Any, number: int) -> list[Digest]:
    # A record's disclosed value is {} or {"_sd": [digests]}: every field is disclosable.
    if not isinstance(value, dict) or set(value) - {SD_KEY}:
        raise VerificationError(f"record {number} is not an object of field digests")
    digests = value.get(SD_KEY, [])
    if not isinstance(digests, list) or not all(
        isinstance(d, str) and DIGEST_PATTERN.fullmatch(d) for d in digests
    ):
        raise VerificationError(f"record {number}: _sd is not a list of digests")
    return digests


@dataclass(frozen=True, slots=True)
class _Opened:
    number: int
    record: Disclosure
    fields: dict[str, Disclosure]


def _open(claims: DossierClaims, disclosures: list[Disclosure]) -> list[_Opened]:
    by_digest = {d.digest: d for d in disclosures}
    seen: set[Digest] = set()
    used: set[Digest] = set()

    def encounter(value: Digest) -> Disclosure | None:
        if value in seen:
            raise VerificationError(f"the digest {value} occurs more than once")
        seen.add(value)
        found = by_digest.get(value)
        if found is not None:
            used.add(value)
        return found

    opened: list[_Opened] = []
    for number, element in enumerate(claims.records, start=1):
        record = encounter(element.digest)
        if record is None:
            continue  # not disclosed, or a decoy
        if record.name is not None:
            raise VerificationError(f"record {number}: a field disclosure stands for a record")
        fields: dict[str, Disclosure] = {}
        for value in _body_digests(record.value, number):
            field = encounter(value)
            if field is None:
                continue
            if field.name is None:
                raise VerificationError(f"record {number}: a record disclosure stands for a field")
            if field.name in fields:
                raise VerificationError(f"record {number}: the field {field.name!r} is repeated")
            try:
                check_field_value(field.value, f"record {number}.{field.name}")
            except ProtocolError as exc:
                raise VerificationError(str(exc)) from exc
            fields[field.name] = field
        opened.append(_Opened(number, record, fields))
    unreferenced = len(by_digest) - len(used)
    if unreferenced:
        raise VerificationError(
            f"{unreferenced} disclosure{'s' * (unreferenced != 1)} not referenced by the "
            "issuer-signed JWT (or by a disclosed record)"
        )
    return opened


def _verify(
    presentation: str,
    *,
    issuer_key: bytes,
    room_id: str,
    committed_jwt: str | None,
    issuer: str | None,
) -> tuple[VerifiedDossier, list[_Opened]]:
    if not isinstance(presentation, str) or len(presentation) > MAX_PRESENTATION_CHARS:
        raise VerificationError("the presentation is not text of an acceptable size")
    try:
        jwt, texts = split_sd_jwt(presentation)
        disclosures = [parse_disclosure(text) for text in texts]
    except ProtocolError as exc:
        raise VerificationError(f"malformed presentation: {exc}") from exc
    if committed_jwt is not None:
        check_committed(jwt, committed_jwt)
    header, payload = verify_jwt(jwt, issuer_key, typ=DOSSIER_TYP)
    try:
        claims = DossierClaims.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise VerificationError(f"not a dossier: {where}: {error['msg']}") from exc
    if claims.room_id != room_id:
        raise VerificationError(
            f"the dossier is committed in room {claims.room_id}, not in room {room_id}"
        )
    if issuer is not None and claims.iss != issuer:
        raise VerificationError(f"the dossier is issued by {claims.iss}, not by {issuer}")
    opened = _open(claims, disclosures)
    records = tuple(
        VerifiedRecord(o.number, MappingProxyType({name: d.value for name, d in o.fields.items()}))
        for o in opened
    )
    kid = header.get("kid")
    verified = VerifiedDossier(
        jwt=jwt,
        dossier_id=claims.jti,
        issuer=claims.iss,
        device_id=kid if isinstance(kid, str) else None,
        room_id=claims.room_id,
        title=claims.title,
        issued_at=claims.iat,
        records=records,
        positions=len(claims.records),
    )
    return verified, opened


def verify_presentation(
    presentation: str,
    *,
    issuer_key: bytes,
    room_id: str,
    committed_jwt: str | None = None,
    issuer: str | None = None,
) -> VerifiedDossier:
    """Verify a presentation against the issuer's Ed25519 key and the room it must be in.

    `committed_jwt`, when given, is the issuer-signed JWT of the log's commit
    event: anything else is refused. `issuer` is the account id the ``iss``
    claim must name. Returns the disclosed records; raises `VerificationError`.
    """
    verified, _ = _verify(
        presentation,
        issuer_key=issuer_key,
        room_id=room_id,
        committed_jwt=committed_jwt,
        issuer=issuer,
    )
    return verified


def load_issued(issuance: str, *, issuer_key: bytes, room_id: str) -> IssuedDossier:
    """Rebuild an `IssuedDossier` from its stored issuance (`IssuedDossier.issuance`).

    Every record must be disclosed, or the issuer could not present it later: the
    numbers run from 1 without a gap, and there is at least one (a dossier has a
    record; an issuance stripped of every disclosure fails closed). A record cut
    from the end, or a field's disclosure removed, cannot be told from a decoy
    (that is what decoys are for); the issuer's sealed store
    (`client_sdk.client.sealed_file`, authenticated encryption) keeps them whole.
    """
    verified, opened = _verify(
        issuance, issuer_key=issuer_key, room_id=room_id, committed_jwt=None, issuer=None
    )
    numbers = [o.number for o in opened]
    if not numbers:
        raise VerificationError("the stored issuance discloses no record")
    if numbers != list(range(1, len(numbers) + 1)):
        raise VerificationError("the stored issuance misses a record's disclosure")
    return IssuedDossier(
        jwt=verified.jwt,
        dossier_id=verified.dossier_id,
        record_disclosures=tuple(o.record.text for o in opened),
        field_disclosures=tuple(
            MappingProxyType({name: d.text for name, d in o.fields.items()}) for o in opened
        ),
    )
