"""Issuing a dossier as an SD-JWT (RFC 9901 §4) and presenting chosen parts of it (§7.2).

The payload, every member always visible:

- ``iss`` the issuer's account id; the JWS header's ``kid`` is its device id;
- ``iat`` the issue time (seconds), ``jti`` the dossier id (128 random bits),
  ``room_id`` the room it is committed in (so a commitment from another room
  is refused), ``title``, ``v`` the format version (1);
- ``records``: one ``{"...": digest}`` per record (§4.2.4.2), each record an
  array-element Disclosure whose value is ``{"_sd": [digests]}``: one
  object-property Disclosure per field (§4.2.4.1), so every field of every
  record and every record itself is selectively disclosable;
- ``_sd_alg`` ``"sha-256"``.

Decoys (§4.2.5), when asked for: N decoy elements after the last record,
and each record's ``_sd`` padded with decoys to the largest field count, so
neither the number of records nor which record lacks a field shows. Record
numbers are array positions, which is why array decoys go at the end: mixed
in, the gap between a disclosed record's number and its position would
betray how many decoys precede it. Every ``_sd`` array is sorted, which hides
the field order (§4.2.4.1). No key binding: a presentation travels inside an
envelope signed by the presenter's device, which already says who sent it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.sdjwt.disclosure import (
    ARRAY_KEY,
    SD_ALG,
    SD_ALG_KEY,
    SD_KEY,
    RandomBytes,
    decoy_digest,
    digest,
    element_disclosure,
    join_sd_jwt,
    new_salt,
    object_disclosure,
)
from client_sdk.protocol.sdjwt.jws import sign_jwt
from client_sdk.protocol.sdjwt.records import (
    DEFAULT_LIMITS,
    DossierLimits,
    check_records,
    check_selection,
    parse_fields_spec,
    parse_records_spec,
)

DOSSIER_TYP: Final = "parley-dossier+sd-jwt"
"""The JWS ``typ`` (RFC 9901 §9.11, RFC 8725 §3.11): names this profile, so no other
SD-JWT or JWT the same key might sign is ever taken for a dossier."""
DOSSIER_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class IssuedDossier:
    """What the issuer keeps: the issuer-signed JWT (the commitment) and every
    Disclosure, indexed by record number and field name."""

    jwt: str
    dossier_id: str
    record_disclosures: tuple[str, ...]
    """``record_disclosures[n - 1]`` discloses that record n exists (its digests)."""
    field_disclosures: tuple[Mapping[str, str], ...]
    """``field_disclosures[n - 1][name]`` discloses that field of record n."""

    @property
    def record_count(self) -> int:
        """How many records (decoys excluded)."""
        return len(self.record_disclosures)

    def field_names(self) -> list[str]:
        """Every field name some record has, sorted."""
        return sorted({name for fields in self.field_disclosures for name in fields})

    def issuance(self) -> str:
        """The SD-JWT as issued: the JWT and every Disclosure (§4), for the issuer's store."""
        everything = [
            text
            for record, fields in zip(self.record_disclosures, self.field_disclosures, strict=True)
            for text in (record, *fields.values())
        ]
        return join_sd_jwt(self.jwt, everything)

    def present(self, records: Sequence[int], fields: Sequence[str] | None = None) -> str:
        """A presentation of `records` (1-based) with `fields` (default: all of them).

        Refuses, with `ProtocolError`, a record that does not exist or a
        field that none of the chosen records has; a chosen record that
        lacks a chosen field is shown without it.
        """
        available = [list(f) for f in self.field_disclosures]
        chosen = sorted(set(records))
        names = list(fields) if fields is not None else self.field_names()
        check_selection(chosen, names, available)
        parts: list[str] = []
        for number in chosen:
            parts.append(self.record_disclosures[number - 1])
            record_fields = self.field_disclosures[number - 1]
            parts.extend(record_fields[name] for name in names if name in record_fields)
        return join_sd_jwt(self.jwt, parts)

    def select(self, records_spec: str, fields_spec: str | None = None) -> str:
        """`present` from the CLI's specs: ``"1-50,77"`` and ``"name,service_number"``."""
        records = parse_records_spec(records_spec, self.record_count)
        fields = parse_fields_spec(fields_spec) if fields_spec is not None else None
        return self.present(records, fields)


def issue_dossier(
    records: object,
    *,
    key: SigningKey,
    issuer: str,
    device_id: str,
    room_id: str,
    title: str,
    issued_at: int,
    decoys: int = 0,
    dossier_id: str | None = None,
    random_bytes: RandomBytes = os.urandom,
    limits: DossierLimits = DEFAULT_LIMITS,
) -> IssuedDossier:
    """Turn a parsed record file into a signed dossier.

    `records` is checked first (`records.check_records`): bad input raises
    `ProtocolError` and nothing is signed. `random_bytes` supplies salts,
    decoys and the dossier id (tests pass a seeded source).
    """
    checked = check_records(records, limits)
    if not 0 <= decoys <= limits.max_decoys:
        raise ProtocolError(f"decoys: between 0 and {limits.max_decoys}")
    if not title or len(title) > 200:
        raise ProtocolError("a dossier title is 1 to 200 characters")
    if not dossier_id:
        dossier_id = b64e(random_bytes(16))
        while dossier_id.startswith("-"):  # it would be read as an option on a command line
            dossier_id = b64e(random_bytes(16))
    pad_to = max(len(record) for record in checked) if decoys else 0
    elements: list[dict[str, str]] = []
    record_disclosures: list[str] = []
    field_disclosures: list[Mapping[str, str]] = []
    for record in checked:
        by_name = {
            name: object_disclosure(new_salt(random_bytes), name, value)
            for name, value in record.items()
        }
        digests = [digest(text) for text in by_name.values()]
        digests += [decoy_digest(random_bytes) for _ in range(pad_to - len(digests))]
        # Sorted: the order in _sd must not depend on the record's field order (§4.2.4.1).
        body: dict[str, Any] = {SD_KEY: sorted(digests)} if digests else {}
        record_text = element_disclosure(new_salt(random_bytes), body)
        elements.append({ARRAY_KEY: digest(record_text)})
        record_disclosures.append(record_text)
        field_disclosures.append(MappingProxyType(by_name))
    elements += [{ARRAY_KEY: decoy_digest(random_bytes)} for _ in range(decoys)]
    every = [e[ARRAY_KEY] for e in elements]
    every += [digest(text) for fields in field_disclosures for text in fields.values()]
    if len(set(every)) != len(every):  # only a broken random source can get here
        raise ProtocolError("a digest repeats: the random source repeated itself")
    payload = {
        "iss": issuer,
        "iat": issued_at,
        "jti": dossier_id,
        "room_id": room_id,
        "title": title,
        "v": DOSSIER_VERSION,
        "records": elements,
        SD_ALG_KEY: SD_ALG,
    }
    jwt = sign_jwt(payload, key=key, typ=DOSSIER_TYP, kid=device_id)
    return IssuedDossier(jwt, dossier_id, tuple(record_disclosures), tuple(field_disclosures))
