"""Dossiers as SD-JWTs (RFC 9901): issuing, presenting, and a verifier that refuses
what a lax one might accept."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.sdjwt import (
    DOSSIER_TYP,
    IssuedDossier,
    check_committed,
    issue_dossier,
    jwk_public_key,
    load_issued,
    public_jwk,
    verify_presentation,
)
from client_sdk.protocol.sdjwt.disclosure import (
    digest,
    element_disclosure,
    join_sd_jwt,
    object_disclosure,
    parse_disclosure,
    split_sd_jwt,
)
from client_sdk.protocol.sdjwt.jws import dumps_compact, parse_jwt, sign_jwt

ROOM = "room-1"
ISSUER = "acc-side-a"
DEVICE = "dev-side-a"
ISSUED_AT = 1_764_000_000

RECORDS: list[dict[str, Any]] = [
    {
        "name": f"Detainee {n}",
        "rank": "corporal" if n % 2 else "sergeant",
        "service_number": f"SN-{n:05d}",
        "captured": {"date": "2026-03-01", "place": "northern crossing"},
        "health": ["stable"] if n % 3 else ["wounded", "treated"],
    }
    for n in range(1, 21)
]
RECORDS[6] = {"name": "Detainee 7", "service_number": "SN-00007"}  # fewer fields


def seeded(seed: int = 7) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def make_dossier(key: SigningKey, **overrides: Any) -> IssuedDossier:
    arguments: dict[str, Any] = {
        "key": key,
        "issuer": ISSUER,
        "device_id": DEVICE,
        "room_id": ROOM,
        "title": "Detainees held by side A",
        "issued_at": ISSUED_AT,
    }
    arguments.update(overrides)
    records = arguments.pop("records", RECORDS)
    return issue_dossier(records, **arguments)


@pytest.fixture(scope="module")
def dossier(key: SigningKey) -> IssuedDossier:
    return make_dossier(key, decoys=5)


def payload_of(jwt: str) -> dict[str, Any]:
    return parse_jwt(jwt, typ=DOSSIER_TYP)[1]


def verify(presentation: str, key: SigningKey, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {"issuer_key": key.public_bytes(), "room_id": ROOM}
    arguments.update(overrides)
    return verify_presentation(presentation, **arguments)


def resign(key: SigningKey, payload: dict[str, Any], disclosures: list[str]) -> str:
    """A presentation of an issuer who signs whatever payload it likes (a malicious issuer)."""
    return join_sd_jwt(sign_jwt(payload, key=key, typ=DOSSIER_TYP, kid=DEVICE), disclosures)


# Issuing


def test_a_dossier_id_never_starts_with_a_dash(key: SigningKey) -> None:
    first = [b"\xf8" + bytes(15), b"\x01" * 16]  # the first encodes as "-AAA..."
    assert b64e(first[0]).startswith("-")
    rest = seeded()

    issued = make_dossier(key, random_bytes=lambda n: first.pop(0) if first else rest(n))

    assert issued.dossier_id == b64e(b"\x01" * 16)


def test_a_presentation_shows_the_chosen_records_and_fields_with_their_numbers(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    verified = verify(dossier.select("2-3,17", "name,service_number"), key, issuer=ISSUER)
    assert [r.number for r in verified.records] == [2, 3, 17]
    assert dict(verified.records[2].fields) == {
        "name": "Detainee 17",
        "service_number": "SN-00017",
    }
    assert (verified.dossier_id, verified.issuer, verified.device_id) == (
        dossier.dossier_id,
        ISSUER,
        DEVICE,
    )
    assert (verified.room_id, verified.issued_at) == (ROOM, ISSUED_AT)


def test_without_fields_every_field_of_the_chosen_records_is_disclosed(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    verified = verify(dossier.select("1"), key)
    assert dict(verified.records[0].fields) == RECORDS[0]


def test_a_record_lacking_a_chosen_field_is_shown_without_it(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    verified = verify(dossier.select("6-7", "rank"), key)
    assert [dict(r.fields) for r in verified.records] == [{"rank": "sergeant"}, {}]


def test_a_record_or_field_that_does_not_exist_is_refused_before_presenting(
    dossier: IssuedDossier,
) -> None:
    with pytest.raises(ProtocolError, match="has 20 records"):
        dossier.select("21")
    with pytest.raises(ProtocolError, match="'blood_type'"):
        dossier.select("1-3", "name,blood_type")
    with pytest.raises(ProtocolError, match="'rank'"):
        dossier.present([7], ["rank"])


def test_the_committed_jwt_holds_digests_and_no_value(dossier: IssuedDossier) -> None:
    header, payload, _ = parse_jwt(dossier.jwt, typ=DOSSIER_TYP)
    assert header == {"alg": "EdDSA", "typ": DOSSIER_TYP, "kid": DEVICE}
    assert payload["_sd_alg"] == "sha-256"
    assert set(payload) == {"iss", "iat", "jti", "room_id", "title", "v", "records", "_sd_alg"}
    assert "SN-0" not in json.dumps(payload)
    assert "corporal" not in json.dumps(payload)
    assert all(set(element) == {"..."} for element in payload["records"])


def test_decoys_pad_the_records_array_and_every_record_to_the_same_shape(
    dossier: IssuedDossier,
) -> None:
    assert len(payload_of(dossier.jwt)["records"]) == len(RECORDS) + 5
    bodies = [parse_disclosure(text).value for text in dossier.record_disclosures]
    lengths = {len(body["_sd"]) for body in bodies}
    assert lengths == {5}  # record 7 has two fields and three decoys
    assert all(body["_sd"] == sorted(body["_sd"]) for body in bodies)


def test_without_decoys_the_array_and_the_digest_lists_are_exact(key: SigningKey) -> None:
    plain = make_dossier(key)
    assert len(payload_of(plain.jwt)["records"]) == len(RECORDS)
    assert len(parse_disclosure(plain.record_disclosures[6]).value["_sd"]) == 2


def test_salts_are_128_random_bits(dossier: IssuedDossier) -> None:
    texts = [*dossier.record_disclosures, *dossier.field_disclosures[0].values()]
    salts = [parse_disclosure(text).salt for text in texts]
    assert all(len(b64d(salt)) == 16 for salt in salts)
    assert len(set(salts)) == len(salts)


def test_randomness_is_injectable_and_determines_the_dossier(key: SigningKey) -> None:
    first = make_dossier(key, decoys=3, random_bytes=seeded(1))
    again = make_dossier(key, decoys=3, random_bytes=seeded(1))
    other = make_dossier(key, decoys=3, random_bytes=seeded(2))
    assert first.issuance() == again.issuance()
    assert first.jwt != other.jwt


def test_a_stored_issuance_rebuilds_the_same_dossier(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    loaded = load_issued(dossier.issuance(), issuer_key=key.public_bytes(), room_id=ROOM)
    assert loaded.select("4-5", "name") == dossier.select("4-5", "name")
    assert loaded.field_names() == dossier.field_names()


def test_an_issuance_missing_a_record_does_not_load(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    partial = dossier.present([n for n in range(1, 21) if n != 5])
    with pytest.raises(VerificationError, match="misses a record"):
        load_issued(partial, issuer_key=key.public_bytes(), room_id=ROOM)


def test_the_issuer_key_travels_as_an_okp_jwk(key: SigningKey) -> None:
    jwk = public_jwk(key.public_bytes())
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert jwk_public_key(jwk) == key.public_bytes()
    with pytest.raises(ProtocolError):
        jwk_public_key({**jwk, "d": jwk["x"]})
    with pytest.raises(ProtocolError):
        jwk_public_key({"kty": "EC", "crv": "P-256", "x": jwk["x"]})


# Refusals: the issuer's signature and the commitment


def test_a_foreign_issuer_key_is_refused(dossier: IssuedDossier) -> None:
    with pytest.raises(VerificationError, match="does not verify with the issuer's key"):
        verify(dossier.select("1"), SigningKey.generate())


def test_a_jwt_other_than_the_committed_one_is_refused(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    other = make_dossier(key)
    with pytest.raises(VerificationError, match="not the one committed"):
        verify(other.select("1"), key, committed_jwt=dossier.jwt)
    verify(dossier.select("1"), key, committed_jwt=dossier.jwt)


def test_check_committed_compares_byte_for_byte(dossier: IssuedDossier) -> None:
    check_committed(dossier.jwt, dossier.jwt)
    with pytest.raises(VerificationError):
        check_committed(dossier.jwt, dossier.jwt + " ")


def test_a_dossier_committed_in_another_room_is_refused(key: SigningKey) -> None:
    elsewhere = make_dossier(key, room_id="room-2")
    with pytest.raises(VerificationError, match="committed in room room-2, not in room room-1"):
        verify(elsewhere.select("1"), key)


def test_another_issuer_named_in_the_jwt_is_refused(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    with pytest.raises(VerificationError, match="issued by acc-side-a, not by acc-side-b"):
        verify(dossier.select("1"), key, issuer="acc-side-b")


def test_a_tampered_payload_breaks_the_signature(key: SigningKey, dossier: IssuedDossier) -> None:
    header, _payload, signature = dossier.jwt.split(".")
    claims = payload_of(dossier.jwt)
    claims["room_id"] = "room-2"
    forged = f"{header}.{b64e(dumps_compact(claims))}.{signature}"
    with pytest.raises(VerificationError, match="does not verify"):
        verify(join_sd_jwt(forged, []), key, room_id="room-2")


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "typ": DOSSIER_TYP},
        {"alg": "HS256", "typ": DOSSIER_TYP},
        {"alg": "ES256", "typ": DOSSIER_TYP},
        {"alg": "EdDSA", "typ": "example+sd-jwt"},
        {"alg": "EdDSA", "typ": DOSSIER_TYP, "jwk": {"kty": "OKP"}},
        {"alg": "EdDSA", "typ": DOSSIER_TYP, "crit": ["exp"]},
    ],
)
def test_other_algorithms_types_and_header_parameters_are_refused(
    key: SigningKey, dossier: IssuedDossier, header: dict[str, Any]
) -> None:
    _, payload, signature = dossier.jwt.split(".")
    jwt = f"{b64e(dumps_compact(header))}.{payload}.{signature}"
    if header["alg"] == "none":
        jwt = f"{b64e(dumps_compact(header))}.{payload}."
    with pytest.raises(VerificationError, match="issuer-signed JWT"):
        verify(join_sd_jwt(jwt, []), key)


def test_a_payload_with_a_repeated_member_is_refused(key: SigningKey) -> None:
    header = b64e(dumps_compact({"alg": "EdDSA", "typ": DOSSIER_TYP}))
    body = b'{"room_id":"room-2","room_id":"room-1"}'
    signing_input = f"{header}.{b64e(body)}"
    jwt = f"{signing_input}.{b64e(key.private.sign(signing_input.encode()))}"
    with pytest.raises(VerificationError, match="repeats the member 'room_id'"):
        verify(join_sd_jwt(jwt, []), key)


# Refusals: disclosures


def test_a_tampered_value_is_refused(key: SigningKey, dossier: IssuedDossier) -> None:
    jwt, disclosures = split_sd_jwt(dossier.select("3", "name"))
    field = parse_disclosure(disclosures[1])
    forged = object_disclosure(field.salt, "name", "Someone else")
    with pytest.raises(VerificationError, match="1 disclosure not referenced"):
        verify(join_sd_jwt(jwt, [disclosures[0], forged]), key)


def test_a_repeated_disclosure_is_refused(key: SigningKey, dossier: IssuedDossier) -> None:
    jwt, disclosures = split_sd_jwt(dossier.select("3", "name"))
    with pytest.raises(VerificationError, match="repeated"):
        verify(join_sd_jwt(jwt, [*disclosures, disclosures[1]]), key)


def test_a_field_without_its_record_is_unreferenced_and_refused(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    jwt, disclosures = split_sd_jwt(dossier.select("3", "name"))
    with pytest.raises(VerificationError, match="not referenced"):
        verify(join_sd_jwt(jwt, disclosures[1:]), key)


def test_a_disclosure_from_another_dossier_is_refused(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    other = make_dossier(key)
    jwt, disclosures = split_sd_jwt(dossier.select("3", "name"))
    _, foreign = split_sd_jwt(other.select("4", "name"))
    with pytest.raises(VerificationError, match="2 disclosures not referenced"):
        verify(join_sd_jwt(jwt, [*disclosures, *foreign]), key)


def test_reordering_disclosures_cannot_move_a_value_to_another_record(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    jwt, disclosures = split_sd_jwt(dossier.select("3-4", "name"))
    shuffled = [disclosures[3], disclosures[0], disclosures[1], disclosures[2]]
    records = verify(join_sd_jwt(jwt, shuffled), key).records
    assert [(r.number, r.fields["name"]) for r in records] == [
        (3, "Detainee 3"),
        (4, "Detainee 4"),
    ]


def test_a_disclosure_with_its_elements_reordered_is_refused(
    key: SigningKey, dossier: IssuedDossier
) -> None:
    jwt, disclosures = split_sd_jwt(dossier.select("3", "name"))
    field = parse_disclosure(disclosures[1])
    swapped = b64e(dumps_compact([field.name, field.salt, field.value]))
    with pytest.raises(VerificationError):
        verify(join_sd_jwt(jwt, [disclosures[0], swapped]), key)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p[:-1],  # no final '~'
        lambda p: p + "eyJhbGciOiJFZERTQSJ9.e30.AA",  # a KB-JWT
        lambda p: p.replace("~", "~~", 1),  # an empty disclosure
        lambda p: p.replace("~", "~%%~", 1),  # not base64url
        lambda p: "",
        lambda p: "~",
    ],
)
def test_malformed_serializations_are_refused(
    key: SigningKey, dossier: IssuedDossier, mangle: Callable[[str], str]
) -> None:
    with pytest.raises(VerificationError, match="malformed presentation"):
        verify(mangle(dossier.select("1", "name")), key)


# Refusals: what only a malicious issuer could sign


def claims(elements: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "iat": ISSUED_AT,
        "jti": "dossier-1",
        "room_id": ROOM,
        "title": "Forged",
        "v": 1,
        "records": elements,
        "_sd_alg": "sha-256",
    }


def one_record(fields: list[str], *, extra: dict[str, Any] | None = None) -> tuple[str, str]:
    """A record disclosure over `fields` disclosures; returns it and its digest."""
    body: dict[str, Any] = {"_sd": sorted(digest(f) for f in fields), **(extra or {})}
    record = element_disclosure("c2FsdHNhbHRzYWx0c2FsdA", body)
    return record, digest(record)


def test_a_digest_occurring_twice_is_refused(key: SigningKey) -> None:
    field = object_disclosure("c2FsdA", "name", "A")
    record, record_digest = one_record([field])
    twice = claims([{"...": record_digest}, {"...": record_digest}])
    with pytest.raises(VerificationError, match="occurs more than once"):
        verify(resign(key, twice, [record, field]), key)


def test_a_record_disclosure_standing_for_a_field_is_refused(key: SigningKey) -> None:
    inner = element_disclosure("c2FsdA", "not a field")
    record, record_digest = one_record([inner])
    with pytest.raises(VerificationError, match="record disclosure stands for a field"):
        verify(resign(key, claims([{"...": record_digest}]), [record, inner]), key)


def test_a_field_disclosure_standing_for_a_record_is_refused(key: SigningKey) -> None:
    field = object_disclosure("c2FsdA", "name", "A")
    with pytest.raises(VerificationError, match="field disclosure stands for a record"):
        verify(resign(key, claims([{"...": digest(field)}]), [field]), key)


def test_a_field_name_disclosed_twice_in_a_record_is_refused(key: SigningKey) -> None:
    first = object_disclosure("c2FsdA", "name", "A")
    second = object_disclosure("c2FsdB", "name", "B")
    record, record_digest = one_record([first, second])
    with pytest.raises(VerificationError, match="'name' is repeated"):
        verify(resign(key, claims([{"...": record_digest}]), [record, first, second]), key)


@pytest.mark.parametrize("name", ["_sd", "...", "_sd_alg"])
def test_a_reserved_claim_name_in_a_disclosure_is_refused(key: SigningKey, name: str) -> None:
    field = object_disclosure("c2FsdA", name, "A")
    record, record_digest = one_record([field])
    with pytest.raises(VerificationError, match="reserved claim"):
        verify(resign(key, claims([{"...": record_digest}]), [record, field]), key)


def test_a_value_nested_deeper_than_the_format_is_refused(key: SigningKey) -> None:
    field = object_disclosure("c2FsdA", "where", {"place": {"lat": 1}})
    record, record_digest = one_record([field])
    with pytest.raises(VerificationError, match="nest at most one level"):
        verify(resign(key, claims([{"...": record_digest}]), [record, field]), key)


def test_a_record_with_permanently_visible_fields_is_refused(key: SigningKey) -> None:
    record, record_digest = one_record([], extra={"name": "always visible"})
    with pytest.raises(VerificationError, match="not an object of field digests"):
        verify(resign(key, claims([{"...": record_digest}]), [record]), key)


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"v": True},
        {"_sd_alg": "sha-512"},
        {"iat": "1764000000"},
        {"records": []},
        {"records": ["plain record"]},
        {"extra": "claim"},
    ],
)
def test_a_payload_outside_the_dossier_format_is_refused(
    key: SigningKey, change: dict[str, Any]
) -> None:
    payload = {**claims([{"...": digest("x")}]), **change}
    with pytest.raises(VerificationError, match="not a dossier"):
        verify(resign(key, payload, []), key)


# The RFC's own examples

RFC9901_VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "rfc9901" / "disclosures.json").read_text()
)


@pytest.mark.parametrize("vector", RFC9901_VECTORS, ids=lambda v: v["disclosure"][:16])
def test_the_rfc_example_disclosures_decode_and_hash_as_the_rfc_says(
    vector: dict[str, Any],
) -> None:
    decoded = parse_disclosure(vector["disclosure"])
    contents = vector["contents"]
    assert (decoded.salt, decoded.value) == (contents[0], contents[-1])
    assert decoded.name == (contents[1] if len(contents) == 3 else None)
    first = RFC9901_VECTORS[0]["digest"]
    if vector["digest"] is not None:
        assert decoded.digest == digest(vector["disclosure"]) == vector["digest"]
    else:
        assert decoded.digest != first  # another encoding of the same claim
