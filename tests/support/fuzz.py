"""Hypothesis for the protocol's parsers: one settings profile, and strategies that make
malformed input from nothing (bytes, text, JSON) or from a valid example (mutations).

The profile is ``HYPOTHESIS_PROFILE``: ``parley`` (the default: a bounded budget, so the
whole fuzzing set adds well under a minute to the suite) or ``long`` (a longer run, by
hand: ``HYPOTHESIS_PROFILE=long scripts/test tests/unit -k fuzz --timeout 0``).
"""

from __future__ import annotations

import json
import os
from typing import Any, Final

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# A loaded machine makes generating input slow: that is no failure of a parser.
_QUIET = [HealthCheck.too_slow]
settings.register_profile(
    "parley", max_examples=40, deadline=None, database=None, suppress_health_check=_QUIET
)
settings.register_profile(
    "long", max_examples=3000, deadline=None, database=None, suppress_health_check=_QUIET
)
PROFILE: Final = os.environ.get("HYPOTHESIS_PROFILE", "parley")
FUZZ: Final = settings.get_profile(PROFILE if PROFILE in ("parley", "long") else "parley")
"""Decorate each fuzz test with this (it carries the budget of the chosen profile)."""

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value (as Python), nested a little."""


def json_bytes() -> st.SearchStrategy[bytes]:
    """JSON text of any value, as bytes."""
    return json_values.map(lambda v: json.dumps(v).encode())


def mutated_bytes(example: bytes) -> st.SearchStrategy[bytes]:
    """`example` with one byte changed, inserted or removed, or cut short."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        if not example:
            return draw(st.binary(max_size=8))
        at = draw(st.integers(min_value=0, max_value=len(example) - 1))
        how = draw(st.sampled_from(["change", "insert", "delete", "truncate"]))
        byte = bytes([draw(st.integers(min_value=0, max_value=255))])
        if how == "change":
            return example[:at] + byte + example[at + 1 :]
        if how == "insert":
            return example[:at] + byte + example[at:]
        if how == "delete":
            return example[:at] + example[at + 1 :]
        return example[:at]

    return mutate()


def mutated_text(example: str) -> st.SearchStrategy[str]:
    """`example` with one character changed, inserted or removed, or cut short."""
    alphabet = [*sorted(set(example)), "\n", " ", "+", "=", "\u2014", "\x00", "\ud800", "9"]

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        at = draw(st.integers(min_value=0, max_value=max(len(example) - 1, 0)))
        how = draw(st.sampled_from(["change", "insert", "delete", "truncate"]))
        char = draw(st.sampled_from(alphabet) | st.characters())
        if how == "change":
            return example[:at] + char + example[at + 1 :]
        if how == "insert":
            return example[:at] + char + example[at:]
        if how == "delete":
            return example[:at] + example[at + 1 :]
        return example[:at]

    return mutate()


def mutated_json(example: Any) -> st.SearchStrategy[Any]:
    """A copy of the JSON `example` with one node replaced by any JSON value, or one
    member removed or added."""

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        document = json.loads(json.dumps(example))
        if not isinstance(document, (dict, list)) or not document:
            return draw(json_values)
        node: Any = document
        while True:
            keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, (dict, list)) and child and draw(st.booleans()):
                node = child
                continue
            how = draw(st.sampled_from(["replace", "remove", "add"]))
            if how == "replace":
                node[key] = draw(json_values)
            elif how == "remove":
                del node[key]
            elif isinstance(node, dict):
                node[draw(st.text(max_size=12))] = draw(json_values)
            else:
                node.append(draw(json_values))
            break
        return document

    return mutate()
