"""Parsing a server answer into its model at the edge: anything else is one `ProtocolError`."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from client_sdk.protocol.encoding import loads_strict
from client_sdk.protocol.errors import ProtocolError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def load_json(data: bytes | str, *, what: str) -> Any:
    """Parse JSON text strictly (`encoding.loads_strict`: no member named twice, no NaN
    or Infinity); `ProtocolError` naming `what` for truncated or invalid JSON."""
    try:
        return loads_strict(data)
    except ProtocolError as exc:
        raise ProtocolError(f"{what}: {exc}") from exc


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
