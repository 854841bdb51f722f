"""The issuer-signed JWT of a dossier: JWS Compact Serialization (RFC 7515 §7.1) with
EdDSA over Ed25519 (RFC 8037 §3.1), explicitly typed (RFC 8725 §3.11).

The JWS signing input is ``BASE64URL(header) "." BASE64URL(payload)``: base64url
text and a dot only. Every other Parley signature is over bytes that begin
``"parley/v1/sig\\x00"`` (`client_sdk.protocol.keys`), which holds a ``/`` and a
NUL that no signing input can, so a device key signing a dossier can never
produce a signature that verifies as an envelope, roster or login, nor the
other way round.

Parsing is strict: the header and payload are UTF-8 JSON objects without
duplicate member names or non-finite numbers (two parsers must never read
two different dossiers from one signature), and the header names exactly
``alg`` (only ``EdDSA``; ``none`` and every other algorithm are refused),
``typ`` (the profile's) and optionally ``kid``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from client_sdk.protocol.encoding import b64d, b64e, loads_strict
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import SigningKey

ALG: Final = "EdDSA"
_HEADER_FIELDS = frozenset({"alg", "typ", "kid"})
_ED25519_LEN = 32
_SIGNATURE_LEN = 64


def dumps_compact(value: Any) -> bytes:
    """Compact UTF-8 JSON (no whitespace, non-ASCII kept, no NaN)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def sign_jwt(payload: dict[str, Any], *, key: SigningKey, typ: str, kid: str) -> str:
    """Sign `payload` as a compact JWS with header ``{"alg":"EdDSA","typ":typ,"kid":kid}``."""
    header = {"alg": ALG, "typ": typ, "kid": kid}
    signing_input = f"{b64e(dumps_compact(header))}.{b64e(dumps_compact(payload))}"
    # Raw Ed25519 over the JWS signing input, as RFC 8037 requires (see the module docstring).
    signature = key.private.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64e(signature)}"


def parse_jwt(jwt: str, *, typ: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """Split and decode a compact JWS without checking its signature.

    Returns header, payload and signature; raises `ProtocolError` for any
    malformation, an algorithm other than EdDSA or a ``typ`` other than `typ`.
    """
    if not isinstance(jwt, str):
        raise ProtocolError("a JWT is text")
    parts = jwt.split(".")
    if len(parts) != 3:
        raise ProtocolError("a compact JWS has three dot-separated parts")
    header = loads_strict(b64d(parts[0]))
    payload = loads_strict(b64d(parts[1]))
    signature = b64d(parts[2])
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ProtocolError("JWS header and payload are JSON objects")
    if header.get("alg") != ALG:
        raise ProtocolError(f"JWS algorithm {header.get('alg')!r} refused: only {ALG} is accepted")
    if header.get("typ") != typ:
        raise ProtocolError(f"JWS typ {header.get('typ')!r} is not {typ!r}")
    unknown = set(header) - _HEADER_FIELDS
    if unknown:
        raise ProtocolError(f"JWS header has unsupported parameters: {', '.join(sorted(unknown))}")
    if "kid" in header and not isinstance(header["kid"], str):
        raise ProtocolError("JWS kid is a string")
    return header, payload, signature


def verify_jwt(jwt: str, public_key: bytes, *, typ: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a compact JWS's EdDSA signature by `public_key`; return header and payload.

    Raises `VerificationError` (malformed input counts as a failed check).
    """
    try:
        header, payload, signature = parse_jwt(jwt, typ=typ)
    except ProtocolError as exc:
        raise VerificationError(f"issuer-signed JWT: {exc}") from exc
    if len(public_key) != _ED25519_LEN:
        raise VerificationError("an Ed25519 public key is 32 bytes")
    if len(signature) != _SIGNATURE_LEN:
        raise VerificationError("issuer-signed JWT: the signature has the wrong length")
    signing_input = jwt.rsplit(".", 1)[0].encode("ascii")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, signing_input)
    except (InvalidSignature, ValueError) as exc:
        raise VerificationError(
            "issuer-signed JWT: the signature does not verify with the issuer's key"
        ) from exc
    return header, payload


def public_jwk(public_key: bytes) -> dict[str, str]:
    """The Ed25519 public key as a JWK (RFC 8037 §2): ``{"kty":"OKP","crv":"Ed25519","x":...}``."""
    if len(public_key) != _ED25519_LEN:
        raise ProtocolError("an Ed25519 public key is 32 bytes")
    return {"kty": "OKP", "crv": "Ed25519", "x": b64e(public_key)}


def jwk_public_key(jwk: Any) -> bytes:
    """The raw Ed25519 key of an OKP JWK; `ProtocolError` for any other key or a private one."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ProtocolError("not an Ed25519 OKP JWK")
    if "d" in jwk:
        raise ProtocolError("the JWK holds a private key")
    raw = b64d(jwk.get("x", ""))
    if len(raw) != _ED25519_LEN:
        raise ProtocolError("an Ed25519 public key is 32 bytes")
    return raw
