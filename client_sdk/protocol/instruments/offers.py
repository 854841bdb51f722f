"""Sealed offers (docs/design.md §7): the opening of an offer, its commitment, its escrow
to the mediators' devices, and what a settlement of two openings says.

An offer is a decimal number with an optional note. Its *opening* is that and
a 32-byte salt; its *commitment* is

    SHA-256("parley/v1/offer-commitment" 0x00 ||
            canonical {room_id, round_id, side, account_id, salt, value, note})

so the room, the round, the side and the committing account are bound in: a
commitment copied to another side, round or account opens to nothing.

The *escrow* is the opening, length-prefixed and zero-padded to a fixed 1024
bytes (so its size says nothing about the offer), sealed with HPKE (RFC 9180,
the envelope's suite: ML-KEM-768+X25519 / HKDF-SHA256 / ChaCha20-Poly1305) to
each mediator device, ``info`` binding room, round, side, commitment and
device. Every ciphertext has the same length (`ESCROW_CIPHERTEXT_LEN`).

Pure: bytes in, bytes out; salts are given by the caller.
"""

from __future__ import annotations

import hmac
import re
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from pydantic import Field, StringConstraints, ValidationError

from client_sdk.protocol.encoding import b64d, b64e, canonical_json, parse_json_object, sha256
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import EncryptionKey, hpke_public_key
from client_sdk.protocol.models import B64, Ident, WireModel

SALT_LEN: Final = 32
ESCROW_PLAINTEXT_LEN: Final = 1024
_HPKE_OVERHEAD: Final = 1120 + 16  # ML-KEM-768+X25519 encapsulated key, AEAD tag
ESCROW_CIPHERTEXT_LEN: Final = ESCROW_PLAINTEXT_LEN + _HPKE_OVERHEAD
COMMITMENT_LABEL: Final = b"parley/v1/offer-commitment\x00"
ESCROW_LABEL: Final = b"parley/v1/offer-escrow\x00"
MAX_NOTE: Final = 500
_SUITE = hpke.Suite(  # the envelope's (envelope.SUITE_XWING)
    hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
)
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]{0,29})(\.[0-9]{1,12})?$")
_MIDPOINT = re.compile(r"^-?(0|[1-9][0-9]{0,29})(\.[0-9]{1,13})?$")
_EXACT = Context(prec=80)

DecimalText = Annotated[str, StringConstraints(pattern=_DECIMAL.pattern, max_length=43)]
"""A decimal number as text: an optional minus, no leading zeros, at most 12 decimals."""

MidpointText = Annotated[str, StringConstraints(pattern=_MIDPOINT.pattern, max_length=44)]
"""The mean of two `DecimalText` numbers (one decimal more)."""

Commitment = Annotated[B64, StringConstraints(min_length=43, max_length=43)]
"""A base64url SHA-256."""

PartySide = Literal["a", "b"]
Rule = Literal["overlap", "midpoint"]


class Opening(WireModel):
    """What opens a commitment: the salt, the offer, its note (kept by the committing
    device, escrowed to the mediators, revealed in a sealed part)."""

    salt: B64 = Field(min_length=43, max_length=43)
    value: DecimalText
    note: str = Field(default="", max_length=MAX_NOTE)


class OpeningContent(WireModel):
    """The sealed part of a reveal or an escrow opening."""

    type: Literal["offer-opening"] = "offer-opening"
    round_id: Ident
    side: PartySide
    opening: Opening


class QuestionContent(WireModel):
    """The sealed part of a round's opening act: what the offers answer."""

    type: Literal["offer-question"] = "offer-question"
    question: str = Field(min_length=1, max_length=2000)


class SettlementContent(WireModel):
    """The sealed part of a settlement: whether the offers overlap, and the midpoint if
    the rule asks for it and they do."""

    type: Literal["offer-settlement"] = "offer-settlement"
    round_id: Ident
    overlap: bool
    midpoint: MidpointText | None


def parse_decimal(text: str) -> str:
    """`text` as an offer value (`DecimalText`); `ProtocolError` if it is not one."""
    if not _DECIMAL.match(text):
        raise ProtocolError(
            f"an offer is a decimal number (like 120 or 99.5, at most 12 decimals), not {text!r}"
        )
    return text


def commitment(*, room_id: str, round_id: str, side: str, account_id: str, opening: Opening) -> str:
    """The commitment to `opening` (base64url SHA-256; see the module docstring)."""
    body = {
        "room_id": room_id,
        "round_id": round_id,
        "side": side,
        "account_id": account_id,
        "salt": opening.salt,
        "value": opening.value,
        "note": opening.note,
    }
    return b64e(sha256(COMMITMENT_LABEL + canonical_json(body)))


def check_opening(
    expected: str, *, room_id: str, round_id: str, side: str, account_id: str, opening: Opening
) -> None:
    """`opening` opens the commitment `expected` of this side's account in this round;
    `VerificationError` if not."""
    actual = commitment(
        room_id=room_id, round_id=round_id, side=side, account_id=account_id, opening=opening
    )
    if not hmac.compare_digest(actual, expected):
        raise VerificationError(f"the opening does not match side {side}'s commitment")


def pad_opening(opening: Opening) -> bytes:
    """The opening, length-prefixed and zero-padded to exactly 1024 bytes."""
    data = canonical_json(opening.model_dump(mode="json"))
    if len(data) + 4 > ESCROW_PLAINTEXT_LEN:
        raise ProtocolError("the offer's note is too long to escrow")
    return len(data).to_bytes(4, "big") + data + bytes(ESCROW_PLAINTEXT_LEN - 4 - len(data))


def unpad_opening(padded: bytes) -> Opening:
    """Undo `pad_opening`; `VerificationError` if it is not a padded opening."""
    length = int.from_bytes(padded[:4], "big")
    if len(padded) != ESCROW_PLAINTEXT_LEN or length > len(padded) - 4 or any(padded[4 + length :]):
        raise VerificationError("the escrow is not a padded opening")
    try:
        return Opening.model_validate(parse_json_object(padded[4 : 4 + length]))
    except (ProtocolError, ValidationError) as exc:
        raise VerificationError("the escrow is not a padded opening") from exc


def escrow_info(
    *, room_id: str, round_id: str, side: str, commitment: str, device_id: str
) -> bytes:
    """HPKE ``info`` for the escrow to one mediator device."""
    return ESCROW_LABEL + canonical_json(
        {
            "room_id": room_id,
            "round_id": round_id,
            "side": side,
            "commitment": commitment,
            "device_id": device_id,
        }
    )


def seal_escrow(
    opening: Opening,
    recipients: dict[str, bytes],
    *,
    room_id: str,
    round_id: str,
    side: str,
    commitment: str,
) -> dict[str, str]:
    """The padded opening sealed to each device of `recipients` (device id -> its HPKE
    public key bytes): device id -> base64url ciphertext, each of the same length."""
    padded = pad_opening(opening)
    return {
        device: b64e(
            _SUITE.encrypt(
                padded,
                hpke_public_key(key),
                info=escrow_info(
                    room_id=room_id,
                    round_id=round_id,
                    side=side,
                    commitment=commitment,
                    device_id=device,
                ),
            )
        )
        for device, key in sorted(recipients.items())
    }


def open_escrow(
    ciphertext: str,
    keys: list[EncryptionKey],
    *,
    room_id: str,
    round_id: str,
    side: str,
    commitment: str,
    device_id: str,
) -> Opening:
    """The opening escrowed to `device_id`, with whichever of its `keys` opens it;
    `VerificationError` if none does or it is not a padded opening."""
    info = escrow_info(
        room_id=room_id, round_id=round_id, side=side, commitment=commitment, device_id=device_id
    )
    try:
        sealed = b64d(ciphertext)
    except ProtocolError as exc:
        raise VerificationError("the escrow is not base64url") from exc
    for key in keys:
        try:
            return unpad_opening(_SUITE.decrypt(sealed, key.hpke_private(), info=info))
        except (InvalidTag, ValueError):
            continue
    raise VerificationError(f"no key of device {device_id} opens side {side}'s escrow")


def settle(values: dict[str, str], *, offering_side: str, rule: str) -> tuple[bool, str | None]:
    """Whether the offering side's number is at least the other's, and their mean if the
    rule is ``midpoint`` and they overlap (exact decimal arithmetic)."""
    if sorted(values) != ["a", "b"]:
        raise ProtocolError("a settlement compares the offers of sides a and b")
    other = "b" if offering_side == "a" else "a"
    try:
        give, ask = Decimal(values[offering_side]), Decimal(values[other])
    except InvalidOperation as exc:
        raise ProtocolError("an offer is not a decimal number") from exc
    overlap = give >= ask
    if rule != "midpoint" or not overlap:
        return overlap, None
    return overlap, _text(_EXACT.divide(_EXACT.add(give, ask), Decimal(2)))


def _text(number: Decimal) -> str:
    """A decimal as `MidpointText` (no exponent, no trailing zeros after the point)."""
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
