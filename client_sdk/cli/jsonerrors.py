"""The names command modules (and plugins) call to fail in one line: text on stderr,
or under ``--json`` a JSON object on stderr with ``code`` and ``message`` (and, for a
failed check, ``kind``). The mapping itself, and the exit statuses (0 done, 1 refused
or failed verification, 2 usage, configuration or connection, 130 interrupted), live
once in `client_sdk.cli.common`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

import typer

from client_sdk.cli.common import REFUSED, USAGE, fail, run, with_client

if TYPE_CHECKING:
    from client_sdk.client import ParleyClient

T = TypeVar("T")

__all__ = ["USAGE", "failure", "run_json", "with_client_json"]


def failure(
    message: str,
    *,
    code: int = REFUSED,
    json_output: bool | None = None,
    kind: str | None = None,
    error: str | None = None,
    details: Mapping[str, object] | None = None,
) -> typer.Exit:
    """Print one error line and return the exit to raise: `code` is the exit status,
    `error` the JSON ``code`` (``refused`` or ``usage`` by default), `kind` a failed
    check's `VerificationError.kind`, `details` more fields of the JSON object."""
    return fail(message, code, code=error, kind=kind, details=details, json_output=json_output)


def run_json(work: Callable[[], Awaitable[T]], *, json_output: bool | None = None) -> T:
    """`common.run`: SDK errors become one line (JSON under `json_output`)."""
    return run(work, json_output=json_output)


def with_client_json(
    work: Callable[[ParleyClient], Awaitable[T]], *, json_output: bool | None = None
) -> T:
    """`common.with_client`: open the profile's client, run `work`, close it."""
    return with_client(work, json_output=json_output)
