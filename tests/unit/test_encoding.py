"""Strict unpadded base64url (RFC 4648 §5) and canonical JSON (RFC 8785)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client_sdk.protocol.encoding import (
    b64d,
    b64e,
    canonical_json,
    loads_strict,
    parse_json_object,
    random_id,
)
from client_sdk.protocol.errors import ProtocolError

# --- base64url -------------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_b64d_reverses_b64e(data: bytes) -> None:
    assert b64d(b64e(data)) == data


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"", ""),
        (b"\x00", "AA"),
        (b"\xff\xfe", "__4"),
        (b"\xfb\xff", "-_8"),
        (b"foobar", "Zm9vYmFy"),
    ],
)
def test_b64e_is_unpadded_url_safe(data: bytes, text: str) -> None:
    assert b64e(data) == text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("AA==", id="padding"),
        pytest.param("AAA=", id="single-padding"),
        pytest.param("AA=", id="partial-padding"),
        pytest.param("Zm9vYmFy====", id="padding-after-full-block"),
        pytest.param("__+4", id="plus"),
        pytest.param("__/4", id="slash"),
        pytest.param(" AA", id="leading-space"),
        pytest.param("AA ", id="trailing-space"),
        pytest.param("A A", id="inner-space"),
        pytest.param("AA\n", id="trailing-newline"),
        pytest.param("\tAA", id="tab"),
        pytest.param("AA\r\n", id="crlf"),
        pytest.param("AB", id="trailing-bits-one-byte"),
        pytest.param("AAB", id="trailing-bits-two-bytes"),
        pytest.param("AAAAA", id="length-mod-4-is-1"),
        pytest.param("A", id="single-char"),
        pytest.param("AAé", id="non-ascii"),
        pytest.param("AA.", id="dot"),
    ],
)
def test_b64d_rejects_anything_but_canonical_unpadded_base64url(text: str) -> None:
    with pytest.raises(ProtocolError):
        b64d(text)


# --- canonical JSON (RFC 8785) -------------------------------------------------------------


def test_rfc8785_section_3_2_2_example() -> None:
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],'
        '"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )

    assert canonical_json(value) == expected.encode("utf-8")


def test_keys_sort_by_utf16_code_units_rfc8785_section_3_2_3() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    # U+1F600 is the surrogate pair D83D DE00, so it sorts before U+FB33.
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )

    assert canonical_json(value) == expected.encode("utf-8")


def test_nested_objects_are_sorted_and_whitespace_free() -> None:
    value = {"b": [{"z": 1, "a": {"y": None, "x": []}}], "a": {}}

    assert canonical_json(value) == b'{"a":{},"b":[{"a":{"x":[],"y":null},"z":1}]}'


@pytest.mark.parametrize(
    ("ieee754_hex", "text"),
    [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ],
)
def test_numbers_format_as_rfc8785_appendix_b(ieee754_hex: str, text: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee754_hex))

    assert canonical_json(number) == text.encode("ascii")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(0, "0", id="zero"),
        pytest.param(-1, "-1", id="negative"),
        pytest.param(2**53 - 1, "9007199254740991", id="largest-safe-integer"),
        pytest.param(1.0, "1", id="integral-float"),
        pytest.param(4.50, "4.5", id="trailing-zero"),
    ],
)
def test_integers_and_integral_floats_print_without_fraction(value: float, text: str) -> None:
    assert canonical_json(value) == text.encode("ascii")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("\u0000\u001f", '"\\u0000\\u001f"', id="controls-as-lowercase-hex"),
        pytest.param("\b\t\n\f\r", '"\\b\\t\\n\\f\\r"', id="short-escapes"),
        pytest.param('"\\', '"\\"\\\\"', id="quote-and-backslash"),
        pytest.param("/", '"/"', id="solidus-unescaped"),
        pytest.param("\u007f", '"\u007f"', id="delete-unescaped"),
        pytest.param("\u00e9\u2028\U0001f600", '"\u00e9\u2028\U0001f600"', id="non-ascii-as-utf8"),
    ],
)
def test_strings_escape_only_what_rfc8785_requires(value: str, text: str) -> None:
    assert canonical_json(value) == text.encode("utf-8")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="infinity"),
        pytest.param(float("-inf"), id="minus-infinity"),
        pytest.param(2**53, id="integer-beyond-2**53"),
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param({1: "a"}, id="non-string-key"),
        pytest.param(b"bytes", id="bytes"),
    ],
)
def test_values_outside_i_json_are_rejected(value: Any) -> None:
    with pytest.raises(ProtocolError):
        canonical_json(value)


@pytest.mark.parametrize(
    ("data", "mentions"),
    [
        (b'{"a": 1, "a": 2}', "repeats the member 'a'"),
        (b'{"a": NaN}', "NaN, which is not a JSON number"),
        (b"[-Infinity]", "-Infinity, which is not a JSON number"),
        (b'{"a": "\xff"}', "not UTF-8 JSON"),
        (b'{"a": ', "not UTF-8 JSON"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_strict_json_refuses_what_two_parsers_could_read_differently(
    data: bytes, mentions: str
) -> None:
    with pytest.raises(ProtocolError, match=mentions):
        loads_strict(data)


def test_a_json_object_is_parsed_strictly() -> None:
    assert parse_json_object(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    with pytest.raises(ProtocolError, match="repeats the member"):
        parse_json_object(b'{"a": 1, "a": 1}')
    with pytest.raises(ProtocolError, match="not a JSON object"):
        parse_json_object(b"[1]")


def test_random_ids_never_start_with_a_dash_so_commands_take_them() -> None:
    ids = [random_id() for _ in range(3000)]  # a dash would lead about 47 of them

    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
    assert all(len(b64d(i)) == 16 for i in ids)
