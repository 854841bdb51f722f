"""How the `parley` command shows text that someone else chose.

Messages, names, titles, notes, dossier values, file names, ids and the
server's own words reach the screen only through this module, so that none
of them can imitate Parley's output (docs/design.md §5, SECURITY.md):

- **Nothing invisible acts.** C0 and C1 control characters, DEL, and with
  them every ANSI escape (CSI, OSC, ...), are shown as visible escapes
  (``\\x1b``, ``\\x9b``), as are bidirectional overrides and isolates
  (U+202A-U+202E, U+2066-U+2069), lone surrogates and the line and paragraph
  separators. In one-line text (`inline`: names, titles, ids, file names)
  every other invisible format character (zero-width spaces and joiners,
  the byte-order mark, bidi marks, soft hyphens, tag characters) is shown
  too, so two names that look alike cannot be told apart only by what you
  cannot see; in running text (`multiline`) zero-width joiners, which
  scripts and emoji need, are kept.
- **A line is Parley's only at column 0.** Only a newline breaks running
  text, and every line after the first, and every line a terminal would
  wrap, is indented under its header (`emit`), so a message cannot start a
  line that looks like another message or like Parley's own words.
- **A sender is what it cannot choose.** `who` puts the side or role (from
  the signed roster or the directory) and a short tag of the server-assigned
  account id before the display name, so a party named "Mona Mediator" is
  still shown as a party.
- **No markup.** Remote text is never read as rich markup or emoji codes:
  lines are built as `rich.text.Text`, styled by Parley only.

JSON output (``--json``) is the exact data and never passes through here.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

INDENT: Final = "    "
"""What every line after a header's first starts with."""
TAG_LENGTH: Final = 6
"""How many characters of an account id `who` shows."""

_BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_KEPT_IN_RUNNING_TEXT: Final = frozenset("\u200c\u200d")
"""Zero-width non-joiner and joiner: scripts (Persian, Indic) and emoji sequences
need them, and they cannot move or hide other text."""
_SIDE_LABELS: Final = {"mediator": "mediator", "a": "party a", "b": "party b"}


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _hidden(char: str, *, running: bool) -> bool:
    """Whether `char` must be shown as an escape rather than as itself."""
    if char in _BIDI_CONTROLS:
        return True
    category = unicodedata.category(char)
    if category in ("Cc", "Cs", "Zl", "Zp"):  # controls (C0, DEL, C1), surrogates, separators
        return True
    if category == "Cf":  # format characters: invisible, some reorder text
        return not (running and char in _KEPT_IN_RUNNING_TEXT)
    return False


def inline(value: object) -> str:
    """`value` as one line of visible characters: newlines, tabs, controls, escape
    sequences, bidi controls and every invisible format character escaped."""
    text = str(value)
    return "".join(_escape(c) if _hidden(c, running=False) else c for c in text)


def multiline(value: object) -> str:
    """Running text (a message, a note): newlines (and CRLF) kept as line breaks, tabs
    as spaces, every other control, escape sequence and bidi control escaped."""
    text = str(value).replace("\r\n", "\n")
    lines = text.split("\n")
    return "\n".join(
        "".join(
            INDENT if c == "\t" else _escape(c) if _hidden(c, running=True) else c for c in line
        )
        for line in lines
    )


def tag(account_id: str) -> str:
    """The short, visible tag of an account id (the server assigns ids, not the sender)."""
    return inline(account_id[:TAG_LENGTH])


def label(*, side: str | None = None, role: str | None = None, account_id: str | None) -> str:
    """``[party a · 3f9c2a]``: the side (or, outside a room, the role) and the account tag."""
    what = _SIDE_LABELS.get(side, side) if side is not None else role
    parts = [inline(what)] if what else []
    if account_id:
        parts.append(tag(account_id))
    return f"[{' · '.join(parts) or 'unknown'}]"


def who(
    name: str, *, side: str | None = None, role: str | None = None, account_id: str | None
) -> str:
    """A display name as Parley shows it: ``[party a · 3f9c2a] Mona Mediator``."""
    return f"{label(side=side, role=role, account_id=account_id)} {inline(name)}"


def emit(console: Console, header: Text | str, body: str = "", *, style: str = "") -> None:
    """Print `header` (Parley's, already safe) followed by `body` (running text, made
    safe here), every line after the first indented, wrapped to the terminal's width
    with the same indent. Output that is not a terminal is never wrapped."""
    from rich.text import Text

    text = header.copy() if isinstance(header, Text) else Text(multiline(header), style=style)
    if body:
        text.append(multiline(body))
    for line in _lines(console, text):
        console.print(line, soft_wrap=True, highlight=False, markup=False, emoji=False)


def _lines(console: Console, text: Text) -> list[Text]:
    from rich.text import Text

    lines: list[Text] = []
    width = console.width - len(INDENT) if console.is_terminal else 0
    for number, logical in enumerate(text.split("\n", allow_blank=True)):
        physical = list(logical.wrap(console, width, overflow="fold")) if width > 0 else [logical]
        for count, piece in enumerate(physical):
            if number or count:
                piece = Text(INDENT).append_text(piece)
            lines.append(piece)
    return lines


def line(console: Console, text: str, *, style: str = "") -> None:
    """Print a line of Parley's words with remote text in it, each remote part passed
    through `inline` or `who` (so it stays on the line). The whole line is made safe
    again (`multiline`), so a part forgotten cannot act on the terminal; a line break
    in it, or a wrap, is indented. No markup, no highlighting."""
    emit(console, text, style=style)
