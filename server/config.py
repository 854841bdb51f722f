"""Server settings, read from ``PARLEY_*`` environment variables (no globals)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")


def default_data_dir() -> Path:
    """Where the server keeps its SQLite database and log key by default."""
    return Path.home() / ".local" / "share" / "parley"


class Settings(BaseSettings):
    """Everything an operator can set; `parley serve --help` documents each."""

    model_config = SettingsConfigDict(env_prefix="PARLEY_", frozen=True, extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Data directory.")
    database_url: str | None = Field(
        default=None,
        description="Database URL; default SQLite at DATA_DIR/parley.db. "
        "PostgreSQL: postgresql://user@host/db (the asyncpg driver)",
    )
    auto_migrate: bool = Field(default=True, description="Upgrade the schema on start.")
    log_origin_host: str = Field(
        default="parley.local", description="Host part of log origins and checkpoint key names."
    )
    log_signing_key: str | None = Field(
        default=None,
        description="C2SP signer key string of the checkpoint-signing log key; default: "
        "generated on first start into DATA_DIR/log-signing-key. Replicas must share one.",
    )
    token_ttl_seconds: int = Field(default=3600, ge=60, description="Bearer token lifetime.")
    challenge_ttl_seconds: int = Field(default=60, ge=5, description="Login challenge lifetime.")
    enrollment_ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, description="Enrollment token lifetime."
    )
    device_link_ttl_seconds: int = Field(
        default=600, ge=30, description="How long a new device's link request waits for approval."
    )
    device_links_pending: int = Field(
        default=5, ge=1, description="Unexpired link requests one account may have waiting."
    )
    revocation_check_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often each process looks for revoked devices among its open streams "
        "(a revocation by `parley admin revoke` on SQLite, which no notification reaches).",
    )
    max_message_bytes: int = Field(
        default=1 << 20, ge=1024, description="Largest request body (bytes)."
    )
    max_recipients: int = Field(default=256, ge=1, description="Recipients per message.")
    rate_limit_per_second: float = Field(
        default=200.0, gt=0, description="Requests per device per second (token bucket)."
    )
    rate_limit_burst: int = Field(default=400, ge=1, description="Token bucket size.")
    public_rate_limit_per_second: float = Field(
        default=20.0,
        gt=0,
        description="Requests per client address per second to the routes that need no "
        "token (enrollment, login challenges and tokens, opening a stream) and failed "
        "authentications (token bucket; IPv6 addresses counted per /64).",
    )
    public_rate_limit_burst: int = Field(
        default=200, ge=1, description="Token bucket size per client address."
    )
    session_sweep_seconds: float = Field(
        default=60.0, gt=0, description="How often expired login challenges and tokens are purged."
    )
    ws_connections_per_device: int = Field(
        default=8, ge=1, description="Open WebSocket connections per device."
    )
    ws_queue_size: int = Field(
        default=1024, ge=1, description="Events buffered per subscriber before it is dropped."
    )

    max_document_bytes: int = Field(
        default=50 * 1024 * 1024, ge=0, description="Largest document (plaintext bytes)."
    )
    max_chunk_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=16,
        description="Largest plaintext chunk of a document upload (each chunk is one request).",
    )
    upload_quota_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=0,
        description="Ciphertext bytes one account may store (blobs and unfinished uploads).",
    )
    upload_expiry_seconds: int = Field(
        default=24 * 3600,
        ge=1,
        description="An unfinished upload is removed this long after its last chunk.",
    )
    upload_sweep_seconds: float = Field(
        default=300.0, gt=0, description="How often expired uploads are looked for."
    )

    metrics_listen: str = Field(
        default="",
        description="HOST:PORT of a separate listener for /metrics (Prometheus); "
        "empty: /metrics is served on the main listener.",
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info",
        description="Least severe level logged: debug, info (one line per request), warning, "
        "error or critical.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="Log lines on stderr: json (one object each) or text."
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="On SIGTERM: how long open streams and in-flight requests get to finish "
        "before the process exits anyway.",
    )

    @field_validator("metrics_listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        if value and not _HOST_PORT.fullmatch(value):
            raise ValueError("must be HOST:PORT (such as 127.0.0.1:9464 or [::1]:9464), or empty")
        if value and not 0 < int(value.rpartition(":")[2]) < 65536:
            raise ValueError("the port must be 1 to 65535")
        return value

    def metrics_address(self) -> tuple[str, int] | None:
        """The host and port of the separate metrics listener, if one is set."""
        if not self.metrics_listen:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host.strip("[]"), int(port)

    def blob_dir(self) -> Path:
        """Where finished document blobs are stored."""
        return self.data_dir / "blobs"

    def upload_dir(self) -> Path:
        """Where unfinished uploads' partial files are kept."""
        return self.data_dir / "uploads"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory; a URL without a
        driver gets the one Parley uses (``postgresql://`` is ``postgresql+asyncpg://``)."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'parley.db'}"
        for plain, driver in _DRIVERS:
            if self.database_url.startswith(plain):
                return driver + self.database_url[len(plain) :]
        return self.database_url


_DRIVERS = (
    ("postgresql://", "postgresql+asyncpg://"),
    ("postgres://", "postgresql+asyncpg://"),
    ("sqlite://", "sqlite+aiosqlite://"),
)
"""URLs that name no driver, and the driver Parley uses for each."""
