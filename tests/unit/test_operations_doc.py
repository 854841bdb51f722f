"""docs/operations.md stays true: its configuration table names every setting the
server reads, with the default the code has, and nothing the code does not read."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic.fields import FieldInfo

from server.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ROW = re.compile(r"^\| `PARLEY_([A-Z0-9_]+)` \| ([^|]+) \|", re.MULTILINE)


def _documented_default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return "`~/.local/share/parley`"
    value = info.default
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return "(empty)" if value == "" else f"`{value}`"


def test_every_setting_is_documented_with_its_default() -> None:
    rows = {name.lower(): default.strip() for name, default in ROW.findall(DOC.read_text())}
    expected = {name: _documented_default(info) for name, info in Settings.model_fields.items()}
    assert rows == expected
