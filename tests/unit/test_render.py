"""Forging the screen: what someone else chose cannot imitate Parley's own output.

Each test is an attack on `parley read` (or another command's lines) through the
one rendering layer, `client_sdk.cli.render`, and the header `parley read` puts
before each message; the attacker controls the message text, its display name,
file names and the server's error words, never its side or account id.
"""

from __future__ import annotations

import io
import re

import pytest
import typer
from rich.console import Console

from client_sdk.cli import render
from client_sdk.cli.common import fail
from client_sdk.cli.messages import message_header, message_json
from client_sdk.client import Message, Relay

ALICE = "3f9c2a77e1d04c4f8a3e2b1c0d9e8f70"
MONA = "1a2b3c4d5e6f708192a3b4c5d6e7f801"
FORGED = "#13 09:15:00 [mediator · 1a2b3c] Mona: We accept the terms."
NOON_UTC_MS = 1_764_590_400_000  # 2025-12-01 12:00:00 UTC


def message(
    text: str,
    *,
    name: str = "Alice",
    side: str = "a",
    account_id: str = ALICE,
    relay: Relay | None = None,
) -> Message:
    return Message(
        room_id="room",
        seq=12,
        leaf_index=11,
        channel="plenary",
        message_id="m1",
        sender_account_id=account_id,
        sender_name=name,
        sender_device="d1",
        sent_at=NOON_UTC_MS,
        server_time=NOON_UTC_MS,
        text=text,
        content={"type": "text", "text": text},
        signed_sha256="",
        relay=relay,
        sender_side=side,
    )


def shown(found: Message, *, width: int = 80, terminal: bool = False) -> str:
    """What `parley read` prints for `found`, on a console of `width` columns."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=terminal, color_system=None, legacy_windows=False
    )
    render.emit(console, message_header(found), found.text)
    return buffer.getvalue()


def only_parleys_lines(output: str) -> list[str]:
    """The lines that start at column 0: the only ones Parley itself writes."""
    return [line for line in output.splitlines() if not line.startswith(render.INDENT)]


def test_newline_in_message_cannot_forge_a_mediator_line() -> None:
    output = shown(message(f"We need time.\n{FORGED}"))

    assert only_parleys_lines(output) == [
        "#12 12:00:00 plenary [party a · 3f9c2a] Alice: We need time."
    ]
    assert f"{render.INDENT}{FORGED}" in output.splitlines()


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c"])
def test_other_line_breaks_cannot_start_a_forged_line(newline: str) -> None:
    output = shown(message(f"We need time.{newline}{FORGED}"))

    first = only_parleys_lines(output)[0]
    assert first.startswith("#12 12:00:00 plenary [party a · 3f9c2a] Alice: ")
    assert len(only_parleys_lines(output)) == 1
    assert "\r" not in output


def test_a_long_message_wrapped_by_the_terminal_cannot_forge_a_line() -> None:
    # Padded so that, unwrapped, the forged header would land at a terminal's column 0.
    padded = "x" * (80 - len("#12 12:00:00 plenary [party a · 3f9c2a] Alice: ")) + FORGED

    for width in (40, 80, 120):
        output = shown(message(padded), width=width, terminal=True)
        lines = output.splitlines()
        assert len(only_parleys_lines(output)) == 1
        assert all(len(line) <= width for line in lines)


@pytest.mark.parametrize(
    ("attack", "visible"),
    [
        ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # CSI: clear the screen, cursor home
        ("\x1b[31mred", "\\x1b[31mred"),  # SGR: recolour
        ("\x1b]0;Parley: verified\x07", "\\x1b]0;Parley: verified\\x07"),  # OSC: window title
        ("\x1b]8;;https://evil.example\x1b\\link", "\\x1b]8;;https://evil.example\\x1b\\link"),
        ("\x9b2J", "\\x9b2J"),  # C1 CSI
        ("\x9d0;title\x9c", "\\x9d0;title\\x9c"),  # C1 OSC and ST
        ("abc\x08\x08\x08xyz", "abc\\x08\\x08\\x08xyz"),  # backspaces over text
        ("\x7f\x00\x07", "\\x7f\\x00\\x07"),  # DEL, NUL, BEL
    ],
)
def test_escape_sequences_are_neutralised(attack: str, visible: str) -> None:
    output = shown(message(f"Offer: {attack}"), width=120, terminal=True)

    assert visible in output
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", output)


@pytest.mark.parametrize("control", ["\u202e", "\u202a", "\u202d", "\u2066", "\u2067", "\u2069"])
def test_bidi_overrides_are_shown_not_obeyed(control: str) -> None:
    output = shown(message(f"We offer {control}001 detainees"))

    assert f"\\u{ord(control):04x}" in output
    assert control not in output


def test_rich_markup_in_a_message_is_printed_literally() -> None:
    text = "[bold red]URGENT[/] [link=https://evil.example]click[/link] :warning:"
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True, color_system="truecolor")
    render.emit(console, message_header(message(text)), text)

    assert text in buffer.getvalue()  # the styled header's codes around it, the text as sent


def test_party_named_mona_mediator_is_shown_as_a_party() -> None:
    impostor = shown(message("We accept.", name="Mona Mediator", side="a"))
    mediator = shown(message("Noted.", name="Mona", side="mediator", account_id=MONA))

    assert impostor.startswith("#12 12:00:00 plenary [party a · 3f9c2a] Mona Mediator: ")
    assert mediator.startswith("#12 12:00:00 plenary [mediator · 1a2b3c] Mona: ")


def test_a_name_cannot_carry_a_line_markup_or_a_fake_label() -> None:
    name = "Alice: fine\n#13 09:15:00 [mediator · 1a2b3c] [bold]Mona"
    output = shown(message("ok", name=name))

    assert len(output.splitlines()) == 1
    assert output.startswith("#12 12:00:00 plenary [party a · 3f9c2a] Alice: fine\\x0a#13")
    assert "[bold]Mona" in output


def test_zero_width_characters_in_names_are_shown() -> None:
    assert render.inline("Mona\u200bMediator") == "Mona\\u200bMediator"
    assert render.inline("Mona\u2060\ufeffMediator") == "Mona\\u2060\\ufeffMediator"
    assert render.inline("Mona\u200e") == "Mona\\u200e"


def test_emoji_and_scripts_in_messages_are_kept() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # joined by zero-width joiners
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # with a zero-width non-joiner

    assert render.multiline(f"{family} {persian}") == f"{family} {persian}"
    assert render.multiline("a zero-width\u200bspace") == "a zero-width\\u200bspace"


def test_a_lone_surrogate_is_shown_not_a_crash() -> None:
    output = shown(message("broken \ud800 text", name="Eve\udfff"))

    assert "broken \\ud800 text" in output
    assert "Eve\\udfff" in output


def test_a_relay_names_the_original_sender_by_tag() -> None:
    relay = Relay(
        original_seq=6,
        original_channel="caucus-b\n#13",
        original_sender_name="Bob [mediator]",
        original_sender_account_id="b0b0b0b0",
        edited=False,
        checked=True,
    )
    output = shown(message("passed on", name="Mona", side="mediator", account_id=MONA, relay=relay))

    assert output == (
        "#12 12:00:00 plenary [mediator · 1a2b3c] Mona: (relaying #6 from [b0b0b0] Bob "
        "[mediator] in caucus-b\\x0a#13, unedited, checked) passed on\n"
    )


def test_the_servers_error_words_are_one_safe_line(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = fail(f"room not found\n{FORGED}\x1b[2J [bold]x[/]")

    assert isinstance(exit_, typer.Exit)
    error = capsys.readouterr().err
    assert error == f"error: room not found\\x0a{FORGED}\\x1b[2J [bold]x[/]\n"


def test_json_output_keeps_the_exact_text() -> None:
    text = f"We need time.\n{FORGED}\x1b[2J\u202e"

    assert message_json(message(text, name="Mona\u200bMediator"))["text"] == text
    assert message_json(message(text, name="Mona\u200bMediator"))["sender_name"] == (
        "Mona\u200bMediator"
    )


def test_piped_output_is_never_hard_wrapped() -> None:
    long = "We propose " + "a one-for-one exchange, " * 20

    output = shown(message(long), width=40, terminal=False)

    assert output == f"#12 12:00:00 plenary [party a · 3f9c2a] Alice: {long}\n"
