"""A command's error is one line that quotes its input as it is, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.server import parley_command


@pytest.mark.parametrize("name", ["a[/]b.json", "[bold]x.json", "long-" + "n" * 120 + ".json"])
def test_an_error_quoting_a_path_is_one_literal_line(tmp_path: Path, name: str) -> None:
    missing = tmp_path / name
    result = subprocess.run(
        [*parley_command(), "excerpt", "verify", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PARLEY_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "COLUMNS": "80"},
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert str(missing) in result.stderr
