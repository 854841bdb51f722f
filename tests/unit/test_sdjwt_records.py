"""The dossier record format and the --records/--fields specs: clear errors for bad input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.sdjwt import (
    DossierLimits,
    check_records,
    issue_dossier,
    load_records,
    parse_fields_spec,
    parse_records_spec,
)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ({"name": "A"}, "JSON list of objects"),
        (["A", "B"], "JSON list of objects"),
        ([{"name": "A"}, 3], "JSON list of objects"),
        ([], "at least one record"),
        ([{"_sd": "A"}], "reserved by SD-JWT"),
        ([{"_sd_alg": "A"}], "reserved by SD-JWT"),
        ([{"...": "A"}], "reserved by SD-JWT"),
        ([{"where": {"_sd": ["x"]}}], "reserved by SD-JWT"),
        ([{"where": {"place": {"lat": 1}}}], "nest at most one level"),
        ([{"health": [["a"]]}], "nest at most one level"),
        ([{"health": [{"a": 1}]}], "nest at most one level"),
        ([{"": "A"}], "non-empty string"),
        ([{"name,rank": "A"}], "comma"),
        ([{" name": "A"}], "whitespace"),
        ([{"x" * 129: "A"}], "longer than 128"),
        ([{"n": 2**60}], "integer outside"),
        ([{"n": float("nan")}], "finite"),
    ],
)
def test_a_malformed_record_file_gets_a_clear_error(records: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        check_records(records)


def test_limits_on_records_fields_and_size_are_enforced() -> None:
    limits = DossierLimits(max_records=2, max_fields=2, max_bytes=100)
    with pytest.raises(ProtocolError, match="at most 2 records"):
        check_records([{}, {}, {}], limits)
    with pytest.raises(ProtocolError, match="more than 2 fields"):
        check_records([{"a": 1, "b": 2, "c": 3}], limits)
    with pytest.raises(ProtocolError, match="larger than 100 bytes"):
        check_records([{"a": "x" * 100}], limits)


def test_registered_jwt_claim_names_are_fine_as_fields() -> None:
    records = [{"iss": "x", "exp": 1, "sub": None, "nested": {"iat": 2.5}, "list": [1, "a"]}]
    assert check_records(records) == records


def test_nothing_is_signed_for_bad_input_or_too_many_decoys() -> None:
    key = SigningKey.generate()
    common: dict[str, Any] = {
        "key": key,
        "issuer": "acc",
        "device_id": "dev",
        "room_id": "room",
        "title": "T",
        "issued_at": 1,
    }
    with pytest.raises(ProtocolError, match="reserved"):
        issue_dossier([{"_sd": 1}], **common)
    with pytest.raises(ProtocolError, match="decoys"):
        issue_dossier([{"a": 1}], decoys=10_001, **common)
    with pytest.raises(ProtocolError, match="decoys"):
        issue_dossier([{"a": 1}], decoys=-1, **common)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1-3,7", [1, 2, 3, 7]),
        ("7, 1-3", [1, 2, 3, 7]),
        ("2-4,3-5", [2, 3, 4, 5]),
        ("10", [10]),
        ("1-10", list(range(1, 11))),
    ],
)
def test_records_specs_parse_to_sorted_numbers(spec: str, expected: list[int]) -> None:
    assert parse_records_spec(spec, 10) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("0", "start at 1"),
        ("0-3", "start at 1"),
        ("5-2", "low to high"),
        ("11", "has 10 records"),
        ("3-11", "has 10 records"),
        ("a", "not a number"),
        ("1,,2", "not a number"),
        ("-3", "not a number"),
        ("1-2-3", "not a number"),
        ("1.5", "not a number"),
    ],
)
def test_bad_records_specs_get_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_records_spec(spec, 10)


def test_fields_specs_keep_order_and_drop_repeats() -> None:
    assert parse_fields_spec("name, service_number,name") == ["name", "service_number"]
    with pytest.raises(ProtocolError, match="empty"):
        parse_fields_spec(" ")
    with pytest.raises(ProtocolError, match="empty field name"):
        parse_fields_spec("name,,rank")


@given(st.text(max_size=40), st.integers(min_value=0, max_value=1000))
def test_a_records_spec_parses_or_raises_protocol_error(spec: str, count: int) -> None:
    try:
        numbers = parse_records_spec(spec, count)
    except ProtocolError:
        return
    assert numbers == sorted(set(numbers))
    assert all(1 <= n <= count for n in numbers)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_any_json_record_file_is_accepted_or_refused_with_protocol_error(value: Any) -> None:
    try:
        check_records(value)
    except ProtocolError:
        pass


def test_a_record_file_is_read_strictly() -> None:
    assert load_records(b'[{"name": "A", "rank": "cpl"}]') == [{"name": "A", "rank": "cpl"}]
    with pytest.raises(ProtocolError, match="repeats the member 'name'"):
        load_records(b'[{"name": "A", "name": "B"}]')
    with pytest.raises(ProtocolError, match="not JSON"):
        load_records(b"name,rank\nA,cpl\n")
    with pytest.raises(ProtocolError, match="not JSON"):
        load_records(b'[{"n": NaN}]')
    with pytest.raises(ProtocolError, match="larger than 10 bytes"):
        load_records(b'[{"name": "A"}]', DossierLimits(max_bytes=10))
