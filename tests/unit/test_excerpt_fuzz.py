"""Excerpt files: any changed byte fails, and malformed input raises only the documented
errors (`ProtocolError` from parsing, `VerificationError` from verifying)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.excerpt import parse_excerpt, verify_excerpt
from tests.support.excerpts import World

WORLD = World()
WORLD.publish_roster([WORLD.mediator, WORLD.alice, WORLD.bob])
WORLD.send(WORLD.alice, "Four detainees.")
WORLD.send(WORLD.bob, "Six.")
FILE = WORLD.excerpt([1, 2]).to_json()


def outcome(data: bytes) -> str:
    try:
        verify_excerpt(parse_excerpt(data))
    except ProtocolError:
        return "malformed"
    except VerificationError:
        return "refused"
    return "verified"


def test_the_untouched_file_verifies() -> None:
    assert outcome(FILE) == "verified"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_changed_byte_makes_the_excerpt_fail(data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(FILE) - 1))
    value = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != FILE[position]))
    changed = FILE[:position] + bytes([value]) + FILE[position + 1 :]
    assert outcome(changed) in {"malformed", "refused"}, f"byte {position} -> {value}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=15,
)


@given(st.binary() | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_input_is_a_protocol_error(data: bytes) -> None:
    try:
        parse_excerpt(data)
    except ProtocolError:
        pass


def shape() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FILE)
    return loaded


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_replacing_any_value_fails_with_a_documented_error(data: st.DataObject) -> None:
    document = shape()
    node: Any = document  # an excerpt: a non-empty object
    path: list[Any] = []
    while True:
        key = data.draw(
            st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
        )
        path.append(key)
        # stop at a leaf or an empty container (its parent's entry is the value replaced)
        if not isinstance(node[key], (dict, list)) or not node[key] or data.draw(st.booleans()):
            break
        node = node[key]
    replacement = data.draw(json_values)
    if node[path[-1]] == replacement:
        return
    node[path[-1]] = replacement
    assert outcome(json.dumps(document).encode()) in {"malformed", "refused"}, path
