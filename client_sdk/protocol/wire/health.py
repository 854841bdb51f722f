"""Liveness and readiness: the answers of ``GET /healthz`` and ``GET /readyz``."""

from __future__ import annotations

from typing import Literal

from client_sdk.protocol.wire.base import Answer
from client_sdk.protocol.wire.errors import ErrorBody


class HealthOut(Answer):
    """The process is up and serving."""

    status: Literal["ok"] = "ok"


class ReadyOut(Answer):
    """Every readiness check passed: ``checks`` names each (``database``,
    ``migrations``, ``log_key``, ``accepting``) with ``ok``."""

    status: Literal["ready"] = "ready"
    checks: dict[str, str]


class NotReadyOut(ErrorBody):
    """The 503 answer of ``GET /readyz``: the JSON error body (code ``not_ready``,
    the failed checks in its message) and every check's outcome, ``ok`` or why not."""

    checks: dict[str, str]
