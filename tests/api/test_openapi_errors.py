"""The OpenAPI description documents every route's error responses (issue 10): the
statuses it can answer, each with the JSON error body. Whether the server keeps to
it is what the schemathesis run checks (`test_api_fuzz.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from server.app import create_app
from server.config import Settings

ERROR_STATUSES = {"400", "401", "403", "404", "409", "413", "422", "429"}
NO_TOKEN = {
    ("post", "/v1/enroll/preview"),
    ("post", "/v1/enroll"),
    ("post", "/v1/auth/challenge"),
    ("post", "/v1/auth/token"),
    ("post", "/v1/device-links"),
    ("get", "/v1/device-links/{link_id}"),
}
"""Routes that need no bearer token (limited per address instead)."""
UNLIMITED = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}


Operations = list[tuple[str, str, dict[str, Any]]]


@pytest.fixture(scope="module")
def operations(tmp_path_factory: pytest.TempPathFactory) -> Operations:
    """Every operation of the app's OpenAPI description: method, path, operation."""
    spec = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi"))).openapi()
    return [
        (method, path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    ]


def _expected(method: str, path: str, operation: dict[str, Any]) -> set[str]:
    expected: set[str] = set()
    if (method, path) not in UNLIMITED:
        expected |= {"429"} if (method, path) in NO_TOKEN else {"401", "429"}
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        expected |= {"400", "413", "422"}
    if operation.get("parameters"):
        expected.add("422")
    return expected


def test_every_route_lists_the_error_responses_it_can_answer(operations: Operations) -> None:
    missing = {
        f"{method.upper()} {path}": sorted(_expected(method, path, op) - set(op["responses"]))
        for method, path, op in operations
    }

    assert {k: v for k, v in missing.items() if v} == {}


def test_every_error_response_is_the_json_error_body(operations: Operations) -> None:
    for method, path, operation in operations:
        errors = {s: r for s, r in operation["responses"].items() if s.startswith("4")}
        assert set(errors) <= ERROR_STATUSES, (method, path)
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_a_429_says_when_to_retry(operations: Operations) -> None:
    for method, path, operation in operations:
        if "429" in operation["responses"]:
            assert "Retry-After" in operation["responses"]["429"]["headers"], (method, path)


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/v1/auth/challenge", {"404"}),
        ("post", "/v1/rooms/{room_id}/messages", {"403", "404", "409"}),
        ("put", "/v1/rooms/{room_id}/uploads/{upload_id}/chunks/{index}", {"400", "409", "413"}),
        ("post", "/v1/witnesses", {"403", "409"}),
    ],
)
def test_a_route_lists_the_refusals_of_its_own_rules(
    operations: Operations, method: str, path: str, statuses: set[str]
) -> None:
    [operation] = [op for m, p, op in operations if (m, p) == (method, path)]

    assert statuses <= set(operation["responses"])
