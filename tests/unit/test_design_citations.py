"""Every design citation in the code points into this repository's docs/design.md.

Modules cite the design as ``docs/design.md §N`` (a ``## N.`` section) or
``§N.M`` (item M of section N's numbered list); a citation of a section that
does not exist, or of the shared design document outside this repository,
fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"
CODE_DIRS = ("server", "client_sdk", "tests", "bench", "alembic", "scripts")
CITATION = re.compile(r"docs/design\.md (§[\d.]+(?:,\s*§[\d.]+)*)")
FOREIGN = re.compile(r"\bDESIGN §")


def _sections() -> dict[str, int]:
    """Section number -> how many numbered items its text has."""
    sections: dict[str, int] = {}
    current: str | None = None
    for line in DESIGN.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"## (\d+[a-z]?)\. ", line)
        if heading:
            current = heading.group(1)
            sections[current] = 0
        elif current is not None and re.match(r"\d+\. ", line):
            sections[current] += 1
    return sections


def _code_files() -> list[Path]:
    return [
        path
        for top in CODE_DIRS
        for path in (ROOT / top).rglob("*")
        if path.suffix in {".py", ".sh", ""} and path.is_file() and ".venv" not in path.parts
    ]


def _citations() -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for path in _code_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITATION.finditer(text):
            found.extend((path, ref) for ref in re.findall(r"§([\d.]+)", match.group(1)))
    return found


def test_the_code_cites_the_design_document() -> None:
    assert len(_citations()) >= 10


def test_every_citation_names_a_section_that_exists() -> None:
    sections = _sections()
    broken = []
    for path, ref in _citations():
        number, _, item = ref.rstrip(".").partition(".")
        if number not in sections or (item and int(item) > sections[number]):
            broken.append(f"{path.relative_to(ROOT)}: §{ref}")
    assert broken == []


def test_nothing_cites_a_design_document_outside_the_repository() -> None:
    this_file = Path(__file__).resolve()
    stray = [
        str(path.relative_to(ROOT))
        for path in _code_files()
        if path != this_file and FOREIGN.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert stray == []
