"""All routers, and nothing else."""

from __future__ import annotations

from fastapi import APIRouter

from server.api import devices, documents, health, identity, instruments, logs, rooms, ws

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(identity.router)
api_router.include_router(devices.router)
api_router.include_router(rooms.router)
api_router.include_router(documents.router)
api_router.include_router(instruments.router)
api_router.include_router(logs.router)
api_router.include_router(ws.router)
