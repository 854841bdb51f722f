"""The SDK's one exception tree: every class in `client_sdk.protocol.errors`, drawn there."""

from __future__ import annotations

import inspect
import re

import pytest

from client_sdk.protocol import errors
from client_sdk.protocol.errors import (
    APIError,
    ConflictError,
    InvalidRequestError,
    ParleyError,
    RateLimitedError,
    api_error,
)

# One drawn line: tree rules, then a class name, then its description.
_DRAWN = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w*)\b")


def _defined() -> dict[str, type[BaseException]]:
    return {
        name: obj
        for name, obj in vars(errors).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    }


def _drawn() -> dict[str, str | None]:
    """Each class in the docstring's drawing, with the class drawn as its parent."""
    doc = errors.__doc__
    assert doc is not None
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        found = _DRAWN.match(line.removeprefix("    "))
        assert found is not None, f"cannot read the drawn line {line!r}"
        depth = len(found["indent"]) // 4
        del stack[depth:]
        parents[found["name"]] = stack[-1][1] if stack else None
        stack.append((depth, found["name"]))
    return parents


def test_the_drawing_lists_exactly_the_classes_defined() -> None:
    assert sorted(_drawn()) == sorted(_defined())


def test_the_drawing_shows_each_class_under_its_base() -> None:
    defined = _defined()
    for name, parent in _drawn().items():
        base = defined[name].__bases__[0]
        assert (base.__name__ if parent is not None else None) == parent, name
        if parent is None:
            assert base is Exception


def test_every_sdk_error_is_a_parley_error() -> None:
    for cls in _defined().values():
        assert issubclass(cls, ParleyError)


def test_every_exported_name_is_defined_here_with_a_docstring() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == errors.__name__, name
            assert inspect.getdoc(obj), name


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequestError),
        (422, InvalidRequestError),
        (409, ConflictError),
        (429, RateLimitedError),
        (500, APIError),
        (418, APIError),
    ],
)
def test_api_error_picks_the_class_for_the_status(status: int, cls: type[APIError]) -> None:
    error = api_error(status, "some-code", "went wrong")
    assert type(error) is cls
    assert (error.status, error.code, error.message) == (status, "some-code", "went wrong")
    assert str(error) == f"went wrong ({status} some-code)"
