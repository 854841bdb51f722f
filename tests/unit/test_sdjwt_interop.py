"""Interoperability with the reference implementation of RFC 9901 (the `sd-jwt` package,
over jwcrypto, which does EdDSA with OKP Ed25519 keys): it verifies our presentations,
and our verifier accepts its issuance of the same structure."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.sdjwt import (
    DOSSIER_TYP,
    IssuedDossier,
    issue_dossier,
    jwk_public_key,
    public_jwk,
    verify_presentation,
)
from client_sdk.protocol.sdjwt.disclosure import join_sd_jwt, split_sd_jwt

RECORDS = [
    {
        "name": f"Detainee {n}",
        "service_number": f"SN-{n:05d}",
        "captured": {"date": "2026-03-01", "place": "Mühlberg"},
        "health": ["stable"],
        "age": 30 + n,
        "released": False,
    }
    for n in range(1, 11)
]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def dossier(key: SigningKey) -> IssuedDossier:
    return issue_dossier(
        RECORDS,
        key=key,
        issuer="acc-a",
        device_id="dev-a",
        room_id="room-1",
        title="Detainees",
        issued_at=1_764_000_000,
        decoys=4,
    )


def reference_verify(presentation: str, key: SigningKey) -> Any:
    jwk = JWK(**public_jwk(key.public_bytes()))
    return SDJWTVerifier(presentation, lambda issuer, header: jwk).get_verified_payload()


def test_the_reference_verifier_accepts_our_presentation(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    payload = reference_verify(dossier.select("2,5-6", "name,captured"), key)
    assert payload["records"] == [
        {"name": f"Detainee {n}", "captured": RECORDS[0]["captured"]} for n in (2, 5, 6)
    ]
    assert (payload["iss"], payload["room_id"], payload["jti"]) == (
        "acc-a",
        "room-1",
        dossier.dossier_id,
    )


def test_the_reference_verifier_accepts_the_whole_issuance(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    assert reference_verify(dossier.issuance(), key)["records"] == RECORDS


def test_the_reference_verifier_refuses_a_foreign_key(dossier: IssuedDossier) -> None:
    with pytest.raises(Exception, match="Verification failed"):
        reference_verify(dossier.select("1"), SigningKey.generate())


def test_an_unreferenced_disclosure_that_the_reference_accepts_we_refuse(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    jwt, disclosures = split_sd_jwt(dossier.select("1", "name"))
    _, stray = split_sd_jwt(dossier.select("2", "name"))
    padded = join_sd_jwt(jwt, [*disclosures, stray[1]])
    assert reference_verify(padded, key)["records"] == [{"name": "Detainee 1"}]
    with pytest.raises(VerificationError, match="not referenced"):
        verify_presentation(padded, issuer_key=key.public_bytes(), room_id="room-1")


def test_we_accept_the_reference_issuance_of_a_dossier() -> None:
    private = JWK.generate(kty="OKP", crv="Ed25519")
    claims = {
        "iss": "acc-b",
        "iat": 1_764_000_000,
        "jti": "dossier-b",
        "room_id": "room-1",
        "title": "Side B's list",
        "v": 1,
        "records": [
            SDObj({SDObj("name"): "Prisoner X", SDObj("rank"): "private"}),
            SDObj({SDObj("name"): "Prisoner Y", SDObj("units"): ["3rd", "7th"]}),
        ],
    }
    issued = SDJWTIssuer(
        claims, private, sign_alg="EdDSA", extra_header_parameters={"typ": DOSSIER_TYP}
    )
    public = jwk_public_key(json.loads(private.export_public()))
    verified = verify_presentation(issued.sd_jwt_issuance, issuer_key=public, room_id="room-1")
    assert [(r.number, dict(r.fields)) for r in verified.records] == [
        (1, {"name": "Prisoner X", "rank": "private"}),
        (2, {"name": "Prisoner Y", "units": ["3rd", "7th"]}),
    ]
