"""Linking a new device to an existing account (docs/design.md §3).

The new device makes its keys, registers a link request (its public signing
and encryption keys) and shows a code; a device the account already has
computes the code of each pending request from the request's id and keys,
and approves only the one whose code the person typed. The code is a hash of
exactly those keys, so a request someone else slipped in (with their keys)
has another code: a typo matches nothing rather than the wrong request.

On approval the existing device signs the new device's certificates with the
account key and hands the account key over, sealed with HPKE (the X-Wing
suite of envelopes) to the new device's encryption key, bound to the request.
"""

from __future__ import annotations

import re
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke

from client_sdk.protocol.encoding import canonical_json, sha256
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import EncryptionKey, SigningKey, hpke_public_key

CODE_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32: no I, L, O or U, so a code read aloud is not misheard."""
CODE_CHARS: Final = 12
"""60 bits: far beyond what anyone can search in a request's lifetime."""
_CODE_DOMAIN: Final = b"parley/v1/device-link-code\x00"
_SEAL_DOMAIN: Final = b"parley/v1/device-link-account-key\x00"
_SUITE: Final = hpke.Suite(
    hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
)
_SEPARATORS = re.compile(r"[\s-]+")


def link_code(*, link_id: str, account_id: str, signing_key: bytes, encryption_key: bytes) -> str:
    """The code both screens show for a link request: ``XXXX-XXXX-XXXX``."""
    digest = sha256(
        _CODE_DOMAIN
        + canonical_json(
            {
                "link_id": link_id,
                "account_id": account_id,
                "signing_key": signing_key.hex(),
                "encryption_key": encryption_key.hex(),
            }
        )
    )
    value = int.from_bytes(digest[:8], "big") >> (64 - 5 * CODE_CHARS)
    chars = [CODE_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(CODE_CHARS))]
    text = "".join(chars)
    return "-".join(text[i : i + 4] for i in range(0, CODE_CHARS, 4))


def normalize_code(text: str) -> str:
    """A typed code in the form `link_code` prints (case, spaces and dashes ignored;
    O read as 0, I and L as 1); `ProtocolError` if it cannot be a code."""
    raw = _SEPARATORS.sub("", text).upper().translate(str.maketrans("OIL", "011"))
    if len(raw) != CODE_CHARS or any(c not in CODE_ALPHABET for c in raw):
        raise ProtocolError(f"a link code is {CODE_CHARS} characters like ABCD-EFGH-JKMN")
    return "-".join(raw[i : i + 4] for i in range(0, CODE_CHARS, 4))


def _seal_info(link_id: str, account_id: str, device_id: str) -> bytes:
    return _SEAL_DOMAIN + canonical_json(
        {"link_id": link_id, "account_id": account_id, "device_id": device_id}
    )


def seal_account_key(
    account_key: SigningKey,
    encryption_key: bytes,
    *,
    link_id: str,
    account_id: str,
    device_id: str,
) -> bytes:
    """The account's private key sealed to the new device's encryption key."""
    return _SUITE.encrypt(
        account_key.private_bytes(),
        hpke_public_key(encryption_key),
        info=_seal_info(link_id, account_id, device_id),
    )


def open_account_key(
    sealed: bytes, encryption_key: EncryptionKey, *, link_id: str, account_id: str, device_id: str
) -> SigningKey:
    """The account key the approving device sealed to this device; `VerificationError`
    if it was sealed for another request, device or key."""
    try:
        raw = _SUITE.decrypt(
            sealed, encryption_key.hpke_private(), info=_seal_info(link_id, account_id, device_id)
        )
        return SigningKey.from_bytes(raw)
    except (InvalidTag, ValueError, ProtocolError) as exc:
        raise VerificationError("the sealed account key does not open for this device") from exc
