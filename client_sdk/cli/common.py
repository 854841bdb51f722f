"""What every command shares: running the async client, printing, failing cleanly.

Command modules import the client inside the commands that use it, never at the
top: `parley COMMAND --help` loads the module but must not pay for the SDK
(`client_sdk.cli.lazy`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from client_sdk.protocol.errors import ParleyError, TransportError, VerificationError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from client_sdk.client import ParleyClient

T = TypeVar("T")


class LazyConsole:
    """A rich `Console` made on first use: `--help` and JSON output never load rich."""

    def __init__(self, *, stderr: bool = False, soft_wrap: bool = False) -> None:
        self._stderr = stderr
        self._soft_wrap = soft_wrap
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """The console itself (made now if need be)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, soft_wrap=self._soft_wrap)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        """`Console.print`, for Parley's own words only: remote text goes through
        `line` or `emit` (`client_sdk.cli.render`)."""
        self.console.print(*objects, **options)

    def line(self, text: str, *, style: str = "") -> None:
        """One line of Parley's words with remote parts in it (`render.line`)."""
        from client_sdk.cli import render

        render.line(self.console, text, style=style)

    def emit(self, header: Text | str, body: str) -> None:
        """A header and remote running text indented under it (`render.emit`)."""
        from client_sdk.cli import render

        render.emit(self.console, header, body)


out = LazyConsole()
err = LazyConsole(stderr=True, soft_wrap=True)
"""Errors are one line whatever the width: soft wrap, so the terminal wraps, not rich."""


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error on stderr and return the exit to raise."""
    from rich.text import Text

    from client_sdk.cli.render import inline

    # The message may quote input (a path, a server's words, a name): one line, made safe.
    err.emit(Text("error:", style="bold red").append(f" {inline(message)}"), "")
    return typer.Exit(code)


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` and turn SDK errors into a message and a non-zero exit."""
    import asyncio

    try:
        return asyncio.run(_run(work))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except VerificationError as exc:
        raise fail(f"verification failed: {exc}", 1) from exc
    except TransportError as exc:
        raise fail(str(exc), 2) from exc
    except ParleyError as exc:
        raise fail(str(exc), 1) from exc


async def _run(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def open_client() -> ParleyClient:
    """The client of the current profile (`$PARLEY_HOME`)."""
    from client_sdk.client import ParleyClient  # not at import: `--help` needs none of it

    try:
        return ParleyClient.open()
    except ParleyError as exc:
        raise fail(str(exc)) from exc


def with_client(work: Callable[[ParleyClient], Awaitable[T]]) -> T:
    """Open the profile's client, run `work` with it, close it."""

    async def wrapped() -> T:
        async with open_client() as client:
            return await work(client)

    return run(wrapped)


def print_json(value: Any) -> None:
    """One JSON document on stdout (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()
