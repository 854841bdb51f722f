"""Safety numbers: the short string two people compare to trust each other's keys.

See docs/design.md §3.

The construction is Signal's ``NumericFingerprintGenerator`` (libsignal
``fingerprint.rs``): for each account, start from
``h = version (2 bytes, big-endian) || account_key || account_id (UTF-8)`` and
``FINGERPRINT_ITERATIONS`` times set ``h = SHA-512(h || account_key)``. The first
30 bytes of ``h``, read as six 5-byte big-endian integers each taken modulo
100,000, give 30 decimal digits. The safety number of two accounts is their
two fingerprints concatenated in sorted order, so both sides compute the same
60 digits; it is shown as twelve groups of five.

Pure: bytes and strings in, strings out; no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from client_sdk.protocol.errors import ProtocolError, VerificationError

FINGERPRINT_VERSION = 1
FINGERPRINT_ITERATIONS = 5200
ACCOUNT_KEY_LEN = 32
FINGERPRINT_DIGITS = 30
SAFETY_NUMBER_DIGITS = 2 * FINGERPRINT_DIGITS

_CHUNK_BYTES = 5
_GROUP_DIGITS = 5
_SAFETY_NUMBER = re.compile(rf"[0-9]{{{SAFETY_NUMBER_DIGITS}}}")


def account_fingerprint(account_id: str, account_key: bytes) -> str:
    """The 30-digit fingerprint of one account's Ed25519 key (raw 32 bytes)."""
    if len(account_key) != ACCOUNT_KEY_LEN:
        raise ProtocolError(f"an account key is {ACCOUNT_KEY_LEN} bytes")
    return _numeric_fingerprint(
        FINGERPRINT_VERSION, account_key, account_id.encode("utf-8"), FINGERPRINT_ITERATIONS
    )


def _numeric_fingerprint(version: int, key: bytes, identifier: bytes, iterations: int) -> str:
    # Exactly Signal's loop (libsignal fingerprint.rs), so its vectors check this code.
    digest = version.to_bytes(2, "big") + key + identifier
    for _ in range(iterations):
        digest = hashlib.sha512(digest + key).digest()
    chunks = (
        int.from_bytes(digest[offset : offset + _CHUNK_BYTES], "big") % 100_000
        for offset in range(0, FINGERPRINT_DIGITS, _CHUNK_BYTES)
    )
    return "".join(f"{chunk:05d}" for chunk in chunks)


def safety_number(a_id: str, a_key: bytes, b_id: str, b_key: bytes) -> str:
    """The 60-digit safety number of two accounts, grouped ``"12345 67890 ..."``.

    Symmetric: swapping the two accounts gives the same string.
    """
    first, second = sorted((account_fingerprint(a_id, a_key), account_fingerprint(b_id, b_key)))
    digits = first + second
    return " ".join(
        digits[i : i + _GROUP_DIGITS] for i in range(0, SAFETY_NUMBER_DIGITS, _GROUP_DIGITS)
    )


def normalize_safety_number(text: str) -> str:
    """Strip all whitespace from a safety number as a person typed or pasted it."""
    return "".join(text.split())


def check_safety_number(
    expected_text: str, a_id: str, a_key: bytes, b_id: str, b_key: bytes
) -> None:
    """Check a safety number read out of band against the two keys; raise `VerificationError`.

    Fails closed on anything that is not 60 digits (empty input included). The
    comparison runs in constant time.
    """
    expected = normalize_safety_number(expected_text)
    if not _SAFETY_NUMBER.fullmatch(expected):
        raise VerificationError(
            f"not a safety number: expected {SAFETY_NUMBER_DIGITS} digits in groups of five"
        )
    actual = normalize_safety_number(safety_number(a_id, a_key, b_id, b_key))
    if not hmac.compare_digest(expected.encode("ascii"), actual.encode("ascii")):
        raise VerificationError(
            f"the safety number does not match the keys of {a_id} and {b_id}: "
            "one side sees a different key; do not mark this contact verified"
        )
