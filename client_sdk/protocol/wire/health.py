"""Liveness: the answer of ``GET /healthz``."""

from __future__ import annotations

from typing import Literal

from client_sdk.protocol.wire.base import Answer


class HealthOut(Answer):
    """The process is up and serving."""

    status: Literal["ok"] = "ok"
