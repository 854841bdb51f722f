"""Running the application under uvicorn: logging, the metrics listener, and a
graceful shutdown.

On SIGTERM (or SIGINT) the server stops accepting connections, closes every
event stream with 1001 (going away) so its client resumes elsewhere, lets
in-flight requests finish (their transactions commit and are answered), runs
the application's shutdown and exits 0, all within
``PARLEY_SHUTDOWN_GRACE_SECONDS``: requests still running then are cancelled
unanswered (a transaction lands whole or not at all, never half-done; the
client's retry under the same id finds out which).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from typing import Any

import uvicorn
from fastapi import FastAPI

from server.config import Settings
from server.errors import StartupError
from server.metrics import Metrics

log = logging.getLogger("parley.server")

WS_MAX_FRAME_BYTES = 64 * 1024
"""The largest WebSocket frame uvicorn accepts from a client."""

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class UvicornFilter(logging.Filter):
    """uvicorn's lines that would say too much or too loudly.

    A WebSocket handshake line carries the path with its query string (where a
    careless client might put a token): dropped, as the access line says the
    same with the route template. uvicorn closes a text frame of invalid UTF-8
    with 1007, as it should, but logs it as an error with a traceback: it is the
    client's fault, so it is one line at INFO. A request cancelled because the
    shutdown's grace period ran out is one warning line, not a traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith('%s - "WebSocket %s"'):
            return False
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            record.msg, record.args = "request cancelled: the shutdown grace period ran out", ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        if record.getMessage().startswith("Invalid UTF-8 sequence received from client"):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def log_config(level: str, format: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of the server: every logger (the server's,
    uvicorn's, the libraries') to stderr at `level`, as JSON lines or plain text.
    uvicorn's own access log is off: `server.api.observe` writes one line per
    request without the path (a query string could carry a secret)."""
    if format == "json":
        formatter: dict[str, Any] = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
            # uvicorn adds an ANSI-coloured copy of some messages.
            "reserved_attrs": [*_RESERVED, "color_message", "taskName"],
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"uvicorn": {"()": UvicornFilter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True, "filters": ["uvicorn"]},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def _reserved() -> list[str]:
    from pythonjsonlogger.core import RESERVED_ATTRS

    return list(RESERVED_ATTRS)


_RESERVED = _reserved()


class GracefulServer(uvicorn.Server):
    """uvicorn's server, ending the application's event streams with 1001 before
    its own shutdown (which would close them with 1012), within the grace period."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, grace: float) -> None:
        super().__init__(config)
        self.app = app
        self.grace = grace

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, close the streams with 1001, then shut down as uvicorn does."""
        deadline = time.monotonic() + self.grace
        for server in getattr(self, "servers", []):
            server.close()  # no new connection while the streams end
        services = getattr(self.app.state, "services", None)
        if services is not None:
            try:
                await asyncio.wait_for(services.streams.go_away(), timeout=self.grace)
            except TimeoutError:
                log.warning("event streams still open after %.1f s", self.grace)
        # uvicorn hands this to asyncio.wait_for, which takes any number of seconds.
        remaining = max(0.0, deadline - time.monotonic())
        self.config.timeout_graceful_shutdown = remaining  # type: ignore[assignment]
        await super().shutdown(sockets)


def run(app: FastAPI, settings: Settings, *, host: str, port: int) -> None:
    """Serve `app` on `host`:`port` (and its metrics where `settings` say) until a
    SIGTERM or SIGINT, then shut down gracefully and return."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(settings.log_level, settings.log_format),
        log_level=settings.log_level,
        access_log=False,
        ws="websockets-sansio",
        # No permessage-deflate: frames carry ciphertext, which does not compress, and
        # each connection's zlib state cost CPU on every frame and memory on every idle
        # stream.
        ws_per_message_deflate=False,
        # Clients send only small frames (auth, ping; the stream closes longer ones
        # than MAX_CLIENT_FRAME with 4413): refuse anything larger at the protocol
        # level (1009) before it is buffered.
        ws_max_size=WS_MAX_FRAME_BYTES,
    )
    metrics_server = _metrics_listener(app.state.metrics, settings)
    # uvicorn raises again the signal it shut down on, once it is done: it was handled.
    previous = {sig: signal.signal(sig, _handled) for sig in _SIGNALS}
    try:
        GracefulServer(config, app, settings.shutdown_grace_seconds).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if metrics_server is not None:
            metrics_server.shutdown()


def _handled(_signum: int, _frame: object) -> None:
    pass


def _metrics_listener(metrics: Metrics, settings: Settings) -> Any:
    address = settings.metrics_address()
    if address is None:
        return None
    from prometheus_client import start_http_server

    host, port = address
    try:
        server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        where = settings.metrics_listen
        raise StartupError(
            f"cannot listen for metrics on {where} (PARLEY_METRICS_LISTEN): {exc.strerror}"
        ) from exc
    return server
