"""`parley offer open --deadline`: a duration from now or an ISO 8601 time, in ms."""

from __future__ import annotations

import pytest

from client_sdk.cli.offers import parse_deadline

NOW = 1_800_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW + 90_000),
        ("10m", NOW + 600_000),
        ("1h30m", NOW + 5_400_000),
        ("2d", NOW + 172_800_000),
        ("PT15M", NOW + 900_000),
        ("P1DT1H", NOW + 90_000_000),
        ("2027-01-15T09:00:00Z", NOW + 3_600_000),
        ("2027-01-15T09:00:00", NOW + 3_600_000),  # UTC when no offset is given
        ("2027-01-15T10:00:00+01:00", NOW + 3_600_000),
    ],
)
def test_a_deadline_is_a_duration_from_now_or_a_point_in_time(text: str, expected: int) -> None:
    assert parse_deadline(text, NOW) == expected


@pytest.mark.parametrize("text", ["soonish", "10", "1x", "P", "PT", "-5m", ""])
def test_anything_else_is_refused_with_what_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_deadline(text, NOW)


def test_a_zero_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="future"):
        parse_deadline("0s", NOW)
