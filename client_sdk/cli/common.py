"""What every command shares: running the async client, printing, failing cleanly.

Command modules import the client inside the commands that use it, never at the
top: `parley COMMAND --help` loads the module but must not pay for the SDK
(`client_sdk.cli.lazy`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import typer

from client_sdk.protocol.errors import ParleyError

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


OK: Final = 0
"""Exit status: done."""
REFUSED: Final = 1
"""Exit status: the server or the room's rules refused, or a verification failed."""
USAGE: Final = 2
"""Exit status: a usage, configuration (profile, keystore, file) or connection error."""
INTERRUPTED: Final = 130
"""Exit status: interrupted (Ctrl-C)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed command reports: its exit status, a stable `code` for programs,
    a one-line `message` for people and, for a failed check, its `kind`."""

    exit_code: int
    code: str
    message: str
    kind: str | None = None
    details: Mapping[str, object] | None = None
    """More fields for programs (a failed audit's ``index``)."""

    def json(self) -> dict[str, object]:
        """The JSON object printed on stderr under ``--json``."""
        shown: dict[str, object] = {"code": self.code, "message": self.message}
        if self.kind is not None:
            shown["kind"] = self.kind
        return {**shown, **(self.details or {})}


def describe(exc: BaseException) -> Failure | None:
    """The one mapping of what a command can raise to an exit status and a code (the
    README's "Exit codes"); None for an exception that is a bug, not a user's error."""
    from client_sdk.protocol import errors

    if isinstance(exc, KeyboardInterrupt):
        return Failure(INTERRUPTED, "interrupted", "interrupted")
    if isinstance(exc, errors.AuditFailure) and exc.index is not None:
        details: dict[str, object] = {"log_id": exc.log_id, "index": exc.index}
        if exc.last is not None and exc.last != exc.index:
            details["last"] = exc.last
        message = f"verification failed: {exc}"
        return Failure(REFUSED, "verification-failed", message, exc.kind, details)
    if isinstance(exc, errors.VerificationError):
        return Failure(REFUSED, "verification-failed", f"verification failed: {exc}", exc.kind)
    if isinstance(exc, errors.WitnessError):
        return Failure(REFUSED, "witness-refused", f"the witness refuses to cosign: {exc}")
    if isinstance(exc, errors.NotPermitted):
        return Failure(REFUSED, str(exc.reason), str(exc))
    if isinstance(exc, errors.APIError):  # the server's request id finds its log line
        request = {"request_id": exc.request_id} if exc.request_id else None
        return Failure(REFUSED, exc.code, str(exc), details=request)
    if isinstance(exc, errors.TransportError):
        return Failure(USAGE, "connection", str(exc))
    if isinstance(exc, errors.KeystoreError | errors.WitnessStateError):
        return Failure(USAGE, "config", str(exc))
    if isinstance(exc, errors.ProtocolError) and isinstance(exc.__cause__, OSError):
        return Failure(USAGE, "file", str(exc))  # a file of the user's it could not read
    if isinstance(exc, errors.ProtocolError):  # input the protocol refuses
        return Failure(REFUSED, "invalid", str(exc))
    if isinstance(exc, ParleyError):
        return Failure(REFUSED, "failed", str(exc))
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return Failure(USAGE, "file", f"{where}{exc.strerror.lower()}")
    return _validation_failure(exc)


def _validation_failure(exc: BaseException) -> Failure | None:
    """A pydantic check of the user's input that no SDK check said first."""
    pydantic_core = sys.modules.get("pydantic_core")  # loaded if anything validated
    if pydantic_core is None or not isinstance(exc, pydantic_core.ValidationError):
        return None
    first = exc.errors(include_url=False)[0] if exc.error_count() else {"msg": "invalid"}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return Failure(USAGE, "invalid-input", f"{where + ': ' if where else ''}{first['msg']}")


def json_errors() -> bool:
    """Whether errors are JSON: the running command (or its group) has ``--json`` set,
    or, before a command runs, ``--json`` is among the arguments."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("json_output"):
            return True
        ctx = ctx.parent
    return _json_requested


_json_requested = False
"""``--json`` among the command line's arguments (`expect_json`)."""


def expect_json(args: list[str]) -> bool:
    """Note whether ``--json`` is among the command line's options (before any ``--``),
    for the errors found before a command runs (a usage error); and say so."""
    global _json_requested
    options = args[: args.index("--")] if "--" in args else args
    _json_requested = "--json" in options
    return _json_requested


def report(failure: Failure, *, json_output: bool | None = None) -> typer.Exit:
    """Print `failure` on stderr, one line (a JSON object with ``code`` and ``message``
    when `json_output`, or by default when the command has ``--json``); return the exit
    to raise."""
    if json_output if json_output is not None else json_errors():
        sys.stderr.write(json.dumps(failure.json(), ensure_ascii=False) + "\n")
        sys.stderr.flush()
        return typer.Exit(failure.exit_code)
    from rich.text import Text

    from client_sdk.cli.render import inline

    # The message may quote input (a path, a server's words, a name): one line, made safe.
    err.emit(Text("error:", style="bold red").append(f" {inline(failure.message)}"), "")
    return typer.Exit(failure.exit_code)


def fail(
    message: str,
    exit_code: int = REFUSED,
    *,
    code: str | None = None,
    kind: str | None = None,
    details: Mapping[str, object] | None = None,
    json_output: bool | None = None,
) -> typer.Exit:
    """Print an error on stderr and return the exit to raise. `code` defaults to
    ``refused`` for exit 1 and ``usage`` for exit 2."""
    default = "usage" if exit_code == USAGE else "refused"
    failure = Failure(exit_code, code or default, message, kind, details)
    return report(failure, json_output=json_output)


def failed(exc: BaseException, *, json_output: bool | None = None) -> typer.Exit:
    """Report an exception `describe` knows; re-raise any other (a bug shows its traceback)."""
    failure = describe(exc)
    if failure is None:
        raise exc
    return report(failure, json_output=json_output)


def run(work: Callable[[], Awaitable[T]], *, json_output: bool | None = None) -> T:
    """Run `work`; SDK and file errors become one line and their exit status."""
    import asyncio

    try:
        return asyncio.run(_run(work))
    except (KeyboardInterrupt, ParleyError, OSError) as exc:
        raise failed(exc, json_output=json_output) from exc


async def _run(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def open_client(*, json_output: bool | None = None) -> ParleyClient:
    """The client of the current profile (`$PARLEY_HOME`). Open it outside the event
    loop: asyncio takes the first Ctrl-C for itself, and the passphrase prompt is here."""
    from client_sdk.client import ParleyClient  # not at import: `--help` needs none of it

    try:
        return ParleyClient.open()
    except ParleyError as exc:
        raise failed(exc, json_output=json_output) from exc


def with_client(
    work: Callable[[ParleyClient], Awaitable[T]], *, json_output: bool | None = None
) -> T:
    """Open the profile's client, run `work` with it, close it; errors as `run`."""
    client = open_client(json_output=json_output)

    async def wrapped() -> T:
        async with client:
            return await work(client)

    return run(wrapped, json_output=json_output)


def print_json(value: Any) -> None:
    """One JSON document on stdout (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()
