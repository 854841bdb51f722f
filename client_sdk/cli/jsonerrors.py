"""Running a command whose failures are one line: text on stderr, or a JSON object on
stdout under ``--json``; exit 1 for a refusal or failed verification, 2 for usage and
an unreachable server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

import typer

from client_sdk.cli.common import fail, print_json
from client_sdk.protocol.errors import (
    APIError,
    ParleyError,
    TransportError,
    VerificationError,
)

if TYPE_CHECKING:
    from client_sdk.client import ParleyClient

T = TypeVar("T")

USAGE = 2


def failure(
    message: str,
    *,
    code: int = 1,
    json_output: bool = False,
    kind: str | None = None,
    details: Mapping[str, object] | None = None,
) -> typer.Exit:
    """Print one error line and return the exit to raise; `kind` (a failed check's
    `VerificationError.kind`) and `details` (such as a failed audit's ``index``, or
    a refused request's ``request_id``) go into the JSON object."""
    if json_output:
        extra = {**({"kind": kind} if kind else {}), **(details or {})}
        print_json({"ok": False, "error": message, **extra})
        return typer.Exit(code)
    return fail(message, code)


def run_json(work: Callable[[], Awaitable[T]], *, json_output: bool) -> T:
    """Run `work`; SDK errors become one line (JSON under `json_output`)."""
    import asyncio

    try:
        return asyncio.run(_await(work))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except VerificationError as exc:
        raise failure(
            f"verification failed: {exc}", json_output=json_output, kind=exc.kind
        ) from exc
    except TransportError as exc:
        raise failure(str(exc), code=USAGE, json_output=json_output) from exc
    except APIError as exc:
        # The server's id of the refused request, to find its log line.
        request = {"request_id": exc.request_id} if exc.request_id else None
        raise failure(str(exc), json_output=json_output, details=request) from exc
    except ParleyError as exc:
        raise failure(str(exc), json_output=json_output) from exc


async def _await(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def with_client_json(work: Callable[[ParleyClient], Awaitable[T]], *, json_output: bool) -> T:
    """Open the profile's client, run `work` with it, close it; errors as `run_json`."""

    from client_sdk.client import ParleyClient  # not at import (see `common`)

    async def wrapped() -> T:
        async with ParleyClient.open() as client:
            return await work(client)

    return run_json(wrapped, json_output=json_output)
