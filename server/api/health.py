"""Liveness."""

from __future__ import annotations

from fastapi import APIRouter

from client_sdk.protocol.wire.health import HealthOut

router = APIRouter()


@router.get("/healthz")
async def healthz() -> HealthOut:
    """The process is up and serving."""
    return HealthOut()
