"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from client_sdk.protocol.wire.errors import ErrorDetail
from client_sdk.protocol.wire.health import HealthOut, NotReadyOut, ReadyOut
from server.api.deps import HealthDep
from server.api.errors import content_response
from server.api.observe import request_id
from server.metrics import CONTENT_TYPE, Metrics

router = APIRouter()
metrics_router = APIRouter()
"""Served on the main listener unless PARLEY_METRICS_LISTEN moves the metrics elsewhere."""


@router.get("/healthz")
async def healthz() -> HealthOut:
    """The process is up and serving."""
    return HealthOut()


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={
        503: {
            "model": NotReadyOut,
            "description": "Not ready: the JSON error body and each check's outcome.",
        }
    },
)
async def readyz(request: Request, health: HealthDep) -> ReadyOut | JSONResponse:
    """Ready for traffic: the database answers, its schema is at the migrations' head,
    the log key is loaded and the process is not shutting down."""
    readiness = await health.readiness()
    if readiness.ready:
        return ReadyOut(checks=readiness.checks)
    failed = ", ".join(f"{name}: {readiness.checks[name]}" for name in readiness.failed)
    body = NotReadyOut(
        error=ErrorDetail(
            code="not_ready", message=f"not ready ({failed})", request_id=request_id(request.scope)
        ),
        checks=readiness.checks,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503)


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses=content_response("text/plain", "The Prometheus text exposition format."),
)
async def metrics(request: Request) -> Response:
    """This process's metrics, for Prometheus to scrape."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE)
