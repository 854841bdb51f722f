"""The server's logging configuration (`server.serving.log_config`), applied in a fresh
process as `parley serve` applies it: JSON lines or plain text on stderr, at the
configured level, uvicorn's colour copies and WebSocket handshake lines left out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_SCRIPT = """
import asyncio, logging, logging.config, sys
from server.serving import log_config
logging.config.dictConfig(log_config(sys.argv[1], sys.argv[2]))
logging.getLogger("parley.access").info(
    "%s %s %s %.1fms request %s", "GET", "/healthz", 200, 1.5, "r-1",
    extra={"request_id": "r-1", "route": "/healthz", "status": 200, "duration_ms": 1.5},
)
logging.getLogger("parley.access").debug("below the level")
logging.getLogger("uvicorn.error").info("Started", extra={"color_message": "\\x1b[36mStarted"})
logging.getLogger("uvicorn.error").info(
    '%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/v1/rooms/r/stream?token=secret"
)
try:
    raise asyncio.CancelledError("Task cancelled, timeout graceful shutdown exceeded")
except asyncio.CancelledError:
    logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
"""


def _stderr(level: str, format: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, level, format],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == ""
    return done.stderr.splitlines()


def test_json_lines_carry_the_fields_and_nothing_uvicorn_colours_or_leaks() -> None:
    access, started, cancelled = (json.loads(line) for line in _stderr("info", "json"))

    assert access["logger"] == "parley.access"
    assert access["level"] == "INFO"
    assert (access["request_id"], access["route"], access["status"]) == ("r-1", "/healthz", 200)
    assert access["duration_ms"] == 1.5
    assert "time" in access
    assert started["message"] == "Started"
    assert "color_message" not in started
    assert cancelled["level"] == "WARNING"
    assert cancelled["message"] == "request cancelled: the shutdown grace period ran out"
    assert "exc_info" not in cancelled


def test_text_lines_name_the_request_id() -> None:
    [access, started, cancelled] = _stderr("info", "text")

    assert access.endswith("INFO parley.access: GET /healthz 200 1.5ms request r-1")
    assert started.endswith("INFO uvicorn.error: Started")
    assert cancelled.endswith(
        "WARNING uvicorn.error: request cancelled: the shutdown grace period ran out"
    )


@pytest.mark.parametrize("format", ["json", "text"])
def test_the_level_leaves_out_what_is_below_it(format: str) -> None:
    [line] = _stderr("warning", format)

    assert "request cancelled" in line
