"""Parsing a server answer into its model at the edge: anything else is one `ProtocolError`."""

from __future__ import annotations

import json
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from client_sdk.protocol.errors import ProtocolError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key could show a signer one thing and a verifier another.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ProtocolError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not JSON")


def load_json(data: bytes | str, *, what: str) -> Any:
    """Parse JSON text strictly (no duplicate keys, no NaN or Infinity).

    Raises `ProtocolError` naming `what` for truncated or invalid JSON.
    """
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ProtocolError as exc:
        raise ProtocolError(f"{what}: not valid JSON: {exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"{what}: not valid JSON ({exc})") from exc
    except RecursionError as exc:  # a hostile answer nested deeper than the parser goes
        raise ProtocolError(f"{what}: JSON nested too deeply") from exc


def _describe(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "the answer"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def parse_answer(model: type[M], data: bytes | str | Any, *, what: str) -> M:
    """`data` (JSON text, or JSON already loaded) as a `model`, or `ProtocolError`.

    `what` names the answer for the message, e.g. ``"GET /v1/rooms/r1"``.
    """
    value = load_json(data, what=what) if isinstance(data, (bytes, str)) else data
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ProtocolError(f"{what}: unexpected answer: {_describe(exc)}") from exc


def parse_shape(shape: TypeAdapter[T], data: bytes | str | Any, *, what: str) -> T:
    """`data` (JSON text, or JSON already loaded) as `shape` (a union, a list...), or
    `ProtocolError`."""
    value = load_json(data, what=what) if isinstance(data, (bytes, str)) else data
    try:
        return shape.validate_python(value)
    except ValidationError as exc:
        raise ProtocolError(f"{what}: unexpected answer: {_describe(exc)}") from exc


@cache
def _list_of(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def parse_answers(model: type[M], data: bytes | str | Any, *, what: str) -> list[M]:
    """`data` (JSON text, or JSON already loaded) as a list of `model`, or `ProtocolError`."""
    return parse_shape(_list_of(model), data, what=what)
