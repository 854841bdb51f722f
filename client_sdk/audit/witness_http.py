"""An auditor's witness over HTTP: the c2sp.org/tlog-witness ``add-checkpoint`` endpoint.

``parley audit witness serve --listen ADDR`` serves `witness_app`, so a log
operator that speaks the standard (any log, not only a Parley server) can
use a Parley auditor as a witness::

    POST /add-checkpoint          body: old size line, proof lines, blank line, checkpoint
    200 text/plain                the cosignature line (``— NAME base64``, ending in LF)
    400 / 403 / 404 / 422         text/plain: the reason, on one line
    409 text/x.tlog.size          the size this witness cosigned last, in decimal, and LF

    GET /ORIGIN_HASH/checkpoint   (monitoring: the lowercase hex SHA-256 of the origin)
    200 text/plain                the newest checkpoint cosigned, with the log's signature
                                  and the cosignature returned for it; 404 if none

The statuses are `client_sdk.audit.witness.Witness.add_checkpoint`'s, which
follows the specification (its version of 2026-07-06, commit 95978ca8 of
github.com/C2SP/C2SP). The witness's state file lock is taken on a worker
thread, so a request waiting for another never blocks the event loop. A body
over `MAX_REQUEST_BYTES` is refused with 413 before it is read whole; a
damaged state file answers 503 and is never reset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from client_sdk.audit.witness import Witness
from client_sdk.protocol.errors import WitnessError, WitnessStateError

__all__ = ["ADD_CHECKPOINT_PATH", "MAX_REQUEST_BYTES", "witness_app"]

ADD_CHECKPOINT_PATH: Final = "/add-checkpoint"
MAX_REQUEST_BYTES: Final = 64 * 1024
"""An old size line, 63 proof lines and a checkpoint with a hundred signatures fit easily."""
_TEXT: Final = "text/plain; charset=utf-8"


class _TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise _TooLarge
    return bytes(body)


def witness_app(witness: Witness, *, report: Callable[[str], None] | None = None) -> Starlette:
    """The witness as an ASGI application; `report` receives one line per answer."""

    def tell(line: str) -> None:
        if report is not None:
            report(line)

    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await _body(request)
        except _TooLarge:
            tell("413 a request over the size limit")
            return PlainTextResponse(
                f"an add-checkpoint request is at most {MAX_REQUEST_BYTES} bytes\n", 413
            )
        try:
            line = await run_in_threadpool(witness.add_checkpoint, body)
        except WitnessError as exc:
            tell(f"{exc.status} {exc}")
            # As given: Starlette would add a charset to text/x.tlog.size.
            return Response(exc.body, exc.status, headers={"content-type": exc.content_type})
        except WitnessStateError as exc:
            tell(f"503 {exc}")
            return PlainTextResponse(f"{exc}\n", 503)
        tell(f"200 cosigned: {line.rstrip()}")
        return Response(line, 200, media_type=_TEXT)

    async def checkpoint(request: Request) -> Response:
        origin_hash = request.path_params["origin_hash"]
        try:
            note = await run_in_threadpool(witness.cosigned_checkpoint, origin_hash)
        except WitnessStateError as exc:
            return PlainTextResponse(f"{exc}\n", 503)
        if note is None:
            return PlainTextResponse("this witness cosigned no checkpoint of that log\n", 404)
        return Response(note, 200, media_type=_TEXT)

    return Starlette(
        routes=[
            Route(ADD_CHECKPOINT_PATH, add_checkpoint, methods=["POST"]),
            Route("/{origin_hash}/checkpoint", checkpoint, methods=["GET"]),
        ]
    )
