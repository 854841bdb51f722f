"""Instrument acts: receipts, sealed-offer rounds, agreements (docs/design.md §7)."""

from __future__ import annotations

from fastapi import APIRouter

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.wire.instruments import ActOut, ActRequest
from server.api.deps import CurrentPrincipal, InstrumentsDep, PathId
from server.api.errors import AUTHENTICATED, JSON_BODY, PARAMETERS, error_responses

router = APIRouter(prefix="/v1/rooms")


@router.post(
    "/{room_id}/instruments",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, *PARAMETERS, 403, 404, 409),
)
async def act(
    room_id: PathId, body: ActRequest, principal: CurrentPrincipal, instruments: InstrumentsDep
) -> ActOut:
    """Judge and log one signed instrument act; a retried act gets its first answer.

    The answer comes after the commit, with the checkpoint covering the act
    and its inclusion proof.
    """
    result = await instruments.act(principal, room_id, body.statement)
    return ActOut(
        seq=result.seq,
        leaf_index=result.leaf_index,
        instrument_id=result.instrument_id,
        created_at=result.created_at,
        checkpoint=result.checkpoint,
        inclusion_proof=[b64e(h) for h in result.inclusion_proof],
    )
