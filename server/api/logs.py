"""Log reads (JSON conveniences and c2sp.org/tlog-tiles) and witness cosignatures."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Response

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.models import JSON_SAFE_INT, SHA256_B64_PATTERN
from client_sdk.protocol.wire.logs import (
    ConsistencyOut,
    CosignatureIn,
    EntriesOut,
    EntryOut,
    InclusionOut,
    LogOut,
    LogSummary,
    WitnessIn,
    WitnessOut,
)
from server.api.deps import CurrentPrincipal, LogsDep, PathId
from server.api.errors import (
    AUTHENTICATED,
    JSON_BODY,
    PARAMETERS,
    content_response,
    error_responses,
)
from server.errors import InvalidInput, NotFound
from server.services.common import decode_b64

router = APIRouter(prefix="/v1")

_SEGMENT = re.compile(r"x\d{3}")
_LAST = re.compile(r"\d{3}")
_LEVEL = re.compile(r"0|[1-9]\d?")
FULL_TILE_CACHE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=5"


def parse_tile_index(segments: list[str]) -> tuple[int, int | None]:
    """The index N and partial width W of ``x001/x234/067[.p/W]`` path segments."""
    width: int | None = None
    if len(segments) >= 2 and segments[-2].endswith(".p"):
        if not segments[-1].isdigit() or segments[-1].startswith("0"):
            raise NotFound("bad partial tile width")
        width = int(segments[-1])
        segments = [*segments[:-2], segments[-2][:-2]]
    if not segments or not _LAST.fullmatch(segments[-1]):
        raise NotFound("bad tile index")
    if not all(_SEGMENT.fullmatch(s) for s in segments[:-1]):
        raise NotFound("bad tile index")
    digits = "".join(s.lstrip("x") for s in segments)
    if len(segments) > 1 and segments[0] == "x000":
        raise NotFound("tile index has leading zeros")
    return int(digits), width


@router.get("/logs", responses=error_responses(*AUTHENTICATED))
async def list_logs(principal: CurrentPrincipal, logs: LogsDep) -> list[LogSummary]:
    """Every log the caller may read: the directory, then its rooms' logs, with why."""
    return [
        LogSummary(
            log_id=found.head.id,
            kind="directory" if found.head.id == DIRECTORY_LOG_ID else "room",
            origin=found.head.origin,
            size=found.head.size,
            access=found.access.value,
        )
        for found in await logs.readable(principal)
    ]


@router.get("/logs/{log_id}", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404))
async def log_info(log_id: PathId, principal: CurrentPrincipal, logs: LogsDep) -> LogOut:
    """Origin, verifier key and size of a log."""
    info = await logs.info(principal, log_id)
    return LogOut(
        log_id=log_id,
        origin=info.head.origin,
        vkey=info.vkey,
        size=info.head.size,
        cosigned_size=info.cosigned_size,
    )


@router.get(
    "/logs/{log_id}/checkpoint",
    response_class=Response,
    responses={
        **content_response("text/plain; charset=utf-8", "The signed checkpoint (a C2SP note)."),
        **error_responses(*AUTHENTICATED, *PARAMETERS, 404),
    },
)
async def checkpoint(
    log_id: PathId,
    principal: CurrentPrincipal,
    logs: LogsDep,
    size: Annotated[int | None, Query(ge=1, le=JSON_SAFE_INT)] = None,
) -> Response:
    """The newest (or a given size's) signed checkpoint, with its cosignatures."""
    note = await logs.checkpoint(principal, log_id, size)
    return Response(
        note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/logs/{log_id}/tile/{path:path}",
    response_class=Response,
    responses={
        **content_response("application/octet-stream", "A hash tile or an entry bundle."),
        **error_responses(*AUTHENTICATED, *PARAMETERS, 404),
    },
)
async def tile(log_id: PathId, path: str, principal: CurrentPrincipal, logs: LogsDep) -> Response:
    """c2sp.org/tlog-tiles: ``tile/L/N[.p/W]`` hash tiles and ``tile/entries/N[.p/W]`` bundles."""
    segments = path.split("/")
    if segments[0] == "entries":
        index, width = parse_tile_index(segments[1:])
        body, full = await logs.entry_bundle(principal, log_id, index, width)
    else:
        if not _LEVEL.fullmatch(segments[0]) or int(segments[0]) > 63:
            raise NotFound("bad tile level")
        index, width = parse_tile_index(segments[1:])
        body, full = await logs.tile(principal, log_id, int(segments[0]), index, width)
    return Response(
        body,
        media_type="application/octet-stream",
        headers={"Cache-Control": FULL_TILE_CACHE if full else PARTIAL_TILE_CACHE},
    )


@router.get("/logs/{log_id}/entries", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404))
async def entries(
    log_id: PathId,
    principal: CurrentPrincipal,
    logs: LogsDep,
    start: Annotated[int, Query(ge=0, le=JSON_SAFE_INT)] = 0,
    end: Annotated[int, Query(ge=0, le=JSON_SAFE_INT)] = 100,
) -> EntriesOut:
    """Leaves ``start <= index < end`` with what each actor signed."""
    rows = await logs.entries(principal, log_id, start, end)
    return EntriesOut(
        entries=[
            EntryOut(
                index=e.entry.idx,
                leaf=b64e(e.entry.leaf),
                leaf_hash=b64e(e.entry.leaf_hash),
                signed=e.signed,
            )
            for e in rows
        ]
    )


@router.get(
    "/logs/{log_id}/proof/inclusion", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404)
)
async def inclusion(
    log_id: PathId,
    principal: CurrentPrincipal,
    logs: LogsDep,
    index: Annotated[int | None, Query(ge=0, le=JSON_SAFE_INT)] = None,
    leaf_hash: Annotated[str | None, Query(pattern=SHA256_B64_PATTERN)] = None,
    size: Annotated[int | None, Query(ge=1, le=JSON_SAFE_INT)] = None,
) -> InclusionOut:
    """An inclusion proof by leaf index or leaf hash (base64url), at `size` or the newest."""
    hashed = None if leaf_hash is None else decode_b64(leaf_hash, "leaf_hash")
    if index is not None and hashed is not None:
        raise InvalidInput("give index or leaf_hash, not both")
    found, tree_size, proof = await logs.inclusion(
        principal, log_id, size=size, index=index, leaf_hash=hashed
    )
    return InclusionOut(index=found, size=tree_size, proof=[b64e(h) for h in proof])


@router.get(
    "/logs/{log_id}/proof/consistency", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404)
)
async def consistency(
    log_id: PathId,
    principal: CurrentPrincipal,
    logs: LogsDep,
    size1: Annotated[int, Query(ge=0, le=JSON_SAFE_INT)],
    size2: Annotated[int | None, Query(ge=0, le=JSON_SAFE_INT)] = None,
) -> ConsistencyOut:
    """A consistency proof from `size1` to `size2` (default: the newest size)."""
    first, second, proof = await logs.consistency(principal, log_id, size1, size2)
    return ConsistencyOut(size1=first, size2=second, proof=[b64e(h) for h in proof])


@router.post(
    "/logs/{log_id}/cosignatures",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, *PARAMETERS, 403, 404, 409),
)
async def cosign(
    log_id: PathId, body: CosignatureIn, principal: CurrentPrincipal, logs: LogsDep
) -> Response:
    """Store a registered witness's cosignature of one checkpoint."""
    await logs.add_cosignature(principal, log_id, body.size, body.cosignature)
    return Response(status_code=201)


@router.post(
    "/witnesses", status_code=201, responses=error_responses(*AUTHENTICATED, *JSON_BODY, 403, 409)
)
async def register_witness(
    body: WitnessIn, principal: CurrentPrincipal, logs: LogsDep
) -> WitnessOut:
    """An auditor registers a witness (cosigning) key."""
    row = await logs.register_witness(principal, body.vkey)
    return WitnessOut(name=row.name, vkey=row.vkey, account_id=row.account_id)


@router.get("/witnesses", responses=error_responses(*AUTHENTICATED))
async def list_witnesses(_principal: CurrentPrincipal, logs: LogsDep) -> list[WitnessOut]:
    """Every registered witness key."""
    return [
        WitnessOut(name=w.name, vkey=w.vkey, account_id=w.account_id)
        for w in await logs.witnesses()
    ]
