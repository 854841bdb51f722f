"""Disclosures, their digests, and the SD-JWT compact serialization (RFC 9901 §4, §4.2).

- A Disclosure is the base64url encoding of the UTF-8 JSON array
  ``[salt, claim name, claim value]`` (an object property, §4.2.1) or
  ``[salt, value]`` (an array element, §4.2.2). Salts here are 128 random
  bits, base64url (§9.3).
- Its digest is ``BASE64URL(SHA-256(ASCII(disclosure)))`` (§4.2.3): the
  hash is over the encoded text, so it pins the exact JSON the issuer chose.
- A decoy digest (§4.2.5) is the digest of 128 fresh random bits.
- An SD-JWT without key binding is
  ``<issuer-signed JWT>~<disclosure>~...~<disclosure>~`` (§4): the last
  component is empty; a non-empty one would be a KB-JWT, which dossiers do
  not use and the parser refuses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from client_sdk.protocol.encoding import b64d, b64e, loads_strict, sha256
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.sdjwt.jws import dumps_compact

SD_ALG: Final = "sha-256"
SD_KEY: Final = "_sd"
SD_ALG_KEY: Final = "_sd_alg"
ARRAY_KEY: Final = "..."
RESERVED_NAMES: Final = frozenset({SD_KEY, SD_ALG_KEY, ARRAY_KEY})
"""Claim names SD-JWT reserves (§4.1, §4.2.1): no dossier field may take them."""
SALT_BYTES: Final = 16
SEPARATOR: Final = "~"
DIGEST_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{43}")
"""A base64url SHA-256 digest: 43 characters."""

RandomBytes = Callable[[int], bytes]
"""``random_bytes(n)``: n cryptographically secure random bytes (``os.urandom``)."""


def digest(disclosure: str) -> str:
    """The digest of a disclosure (or of any base64url text): §4.2.3."""
    return b64e(sha256(disclosure.encode("ascii")))


def new_salt(random_bytes: RandomBytes) -> str:
    """A salt of 128 random bits, base64url."""
    raw = random_bytes(SALT_BYTES)
    if len(raw) != SALT_BYTES:
        raise ProtocolError("the random source returned the wrong number of bytes")
    return b64e(raw)


def decoy_digest(random_bytes: RandomBytes) -> str:
    """A decoy digest: the hash of fresh random bits, indistinguishable from a real one."""
    return digest(new_salt(random_bytes))


def object_disclosure(salt: str, name: str, value: Any) -> str:
    """The Disclosure of an object property ``name: value``."""
    return b64e(dumps_compact([salt, name, value]))


def element_disclosure(salt: str, value: Any) -> str:
    """The Disclosure of an array element."""
    return b64e(dumps_compact([salt, value]))


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A decoded Disclosure: its text, digest, salt, claim name (None for an array
    element) and value."""

    text: str
    digest: str
    salt: str
    name: str | None
    value: Any


def parse_disclosure(text: str) -> Disclosure:
    """Decode one Disclosure; `ProtocolError` unless it is a 2- or 3-element JSON array
    with a string salt and, for 3 elements, a string claim name that SD-JWT allows."""
    decoded = loads_strict(b64d(text))
    if not isinstance(decoded, list) or len(decoded) not in (2, 3):
        raise ProtocolError("a disclosure is a JSON array of two or three elements")
    salt = decoded[0]
    if not isinstance(salt, str):
        raise ProtocolError("a disclosure's salt is a string")
    if len(decoded) == 2:
        return Disclosure(text, digest(text), salt, None, decoded[1])
    name = decoded[1]
    if not isinstance(name, str):
        raise ProtocolError("a disclosure's claim name is a string")
    if name in RESERVED_NAMES:
        raise ProtocolError(f"a disclosure may not name the reserved claim {name!r}")
    return Disclosure(text, digest(text), salt, name, decoded[2])


def join_sd_jwt(jwt: str, disclosures: Sequence[str]) -> str:
    """The compact serialization ``jwt~d1~...~dN~`` (no key binding)."""
    return SEPARATOR.join([jwt, *disclosures, ""])


def split_sd_jwt(sd_jwt: str) -> tuple[str, list[str]]:
    """Split a compact SD-JWT into the issuer-signed JWT and the Disclosure texts.

    Raises `ProtocolError` unless it ends with ``~`` (no KB-JWT), every part
    is non-empty base64url (the JWT: three such parts joined by dots), and no
    Disclosure appears twice (§4: a holder sends each at most once).
    """
    if not isinstance(sd_jwt, str) or not sd_jwt.isascii():
        raise ProtocolError("an SD-JWT is ASCII text")
    parts = sd_jwt.split(SEPARATOR)
    if len(parts) < 2:
        raise ProtocolError("an SD-JWT is the issuer-signed JWT followed by '~'")
    if parts[-1] != "":
        raise ProtocolError("an SD-JWT ends with '~' (key-binding JWTs are not used)")
    jwt, disclosures = parts[0], parts[1:-1]
    if not jwt:
        raise ProtocolError("the SD-JWT has no issuer-signed JWT")
    for text in disclosures:
        if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
            raise ProtocolError("a disclosure is non-empty base64url text")
    if len(set(disclosures)) != len(disclosures):
        raise ProtocolError("a disclosure is repeated")
    return jwt, disclosures
