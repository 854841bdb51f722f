"""Dossiers: record sets as SD-JWTs (RFC 9901), committed, then disclosed in phases.

- `issue_dossier` signs a record list (`records` says what a record may
  hold); the `IssuedDossier` it returns keeps every Disclosure and builds
  presentations by record number and field name.
- `verify_presentation` checks one strictly and returns the disclosed
  records with their numbers.

Modules: `jws` (the EdDSA compact JWS), `disclosure` (Disclosures, digests,
the ``~`` serialization), `records` (format, limits, selection specs),
`issue`, `verify`.
"""

from __future__ import annotations

from client_sdk.protocol.sdjwt.issue import DOSSIER_TYP, IssuedDossier, issue_dossier
from client_sdk.protocol.sdjwt.jws import jwk_public_key, public_jwk
from client_sdk.protocol.sdjwt.records import (
    DEFAULT_LIMITS,
    DossierLimits,
    check_records,
    load_records,
    parse_fields_spec,
    parse_records_spec,
)
from client_sdk.protocol.sdjwt.verify import (
    VerifiedDossier,
    VerifiedRecord,
    check_committed,
    load_issued,
    verify_presentation,
)

__all__ = [
    "DEFAULT_LIMITS",
    "DOSSIER_TYP",
    "DossierLimits",
    "IssuedDossier",
    "VerifiedDossier",
    "VerifiedRecord",
    "check_committed",
    "check_records",
    "issue_dossier",
    "jwk_public_key",
    "load_issued",
    "load_records",
    "parse_fields_spec",
    "parse_records_spec",
    "public_jwk",
    "verify_presentation",
]
