"""What the server's commands share: one error line and its exit code, the settings."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NoReturn

import typer

from server.config import Settings


def fail(message: str, json_output: bool = False, code: int = 1) -> NoReturn:
    """One error line on stderr (under ``--json`` a JSON object with ``code`` and
    ``message``, as every `parley` command's: README "Exit codes") and exit `code`: 1
    for a refusal, 2 for a setting, the database or the log key (`StartupError`)."""
    if json_output:
        import json

        word = "config" if code == 2 else "refused"
        typer.echo(json.dumps({"code": word, "message": message}), err=True)
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings(**overrides: Any) -> Settings:
    """The settings from the environment and `overrides`; a bad value is one line, exit 2."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "_".join(str(part) for part in error["loc"]).upper()
        fail(f"bad setting PARLEY_{name}: {error['msg']}", code=2)


@contextlib.contextmanager
def startup_errors(json_output: bool = False) -> Iterator[None]:
    """A `StartupError` in the block becomes its one line and exit code 2."""
    from server.errors import StartupError

    try:
        yield
    except StartupError as exc:
        fail(exc.message, json_output, code=2)
