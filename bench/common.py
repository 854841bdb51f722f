"""What the benchmarks share: server subprocesses on free ports, fresh databases,
closed-loop HTTP load, percentiles, and the trivial FastAPI baseline.

Benchmarks print exactly one JSON line on stdout; everything a person reads while
a benchmark runs goes to stderr through `log`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from fastapi import FastAPI, Request

from client_sdk.protocol.envelope import Recipient, seal_envelope
from client_sdk.protocol.keys import SigningKey

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 60.0
HIGH_RATE_LIMIT = 1_000_000_000
"""Rate-limit settings large enough that the per-device token bucket never refuses."""


def log(message: str) -> None:
    """Progress for people: stderr, flushed at once (stdout is the JSON line)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any PARLEY_* variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(settings)
    return env


def parley_argv(*args: str) -> list[str]:
    """How to run the `parley` command of this environment with `args`."""
    return [sys.executable, "-c", "from client_sdk.cli.main import main; main()", *args]


class ServiceProcess:
    """An HTTP server subprocess on a free local port, started and stopped explicitly."""

    def __init__(
        self, argv: Sequence[str], *, env: dict[str, str], port: int, log_path: Path
    ) -> None:
        self.argv = list(argv)
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id (the server itself, not a wrapper)."""
        assert self.process is not None
        return self.process.pid

    def spawn(self) -> None:
        """Start the process (without waiting for it to listen)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT
            )

    async def start(self, health_path: str = "/healthz") -> None:
        """Start the process and wait until `health_path` answers 200."""
        self.spawn()
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
                try:
                    if (await client.get(self.url + health_path)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; wait for the process."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def backend_of(url: str | None) -> str:
    """sqlite or postgresql."""
    return "postgresql" if url and url.startswith("postgresql") else "sqlite"


async def start_parley(
    workdir: Path, database_url: str | None = None, **settings: str
) -> tuple[ServiceProcess, dict[str, str]]:
    """`parley serve` on a free port, started: its data under ``workdir/server``, the
    per-device rate limit out of reach, plus any other ``PARLEY_*`` `settings`.

    Returns the running server and the environment it runs in (for `parley admin`).
    """
    env = clean_env(
        PARLEY_DATA_DIR=str(workdir / "server"),
        PARLEY_RATE_LIMIT_PER_SECOND=str(HIGH_RATE_LIMIT),
        PARLEY_RATE_LIMIT_BURST=str(HIGH_RATE_LIMIT),
        **({"PARLEY_DATABASE_URL": database_url} if database_url else {}),
        **settings,
    )
    port = free_port()
    server = ServiceProcess(
        parley_argv("serve", "--port", str(port), "--log-level", "warning"),
        env=env,
        port=port,
        log_path=workdir / "server.log",
    )
    log(f"starting parley serve on port {port} ({backend_of(database_url)})")
    await server.start()
    return server, env


# --- PostgreSQL ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FreshDatabase:
    """A database created for one run on a PostgreSQL server."""

    admin_dsn: str
    name: str
    url: str
    """The SQLAlchemy URL (postgresql+asyncpg) of the new database."""


def _with_database(url: str, name: str, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, f"/{name}", parts.query, ""))


async def create_fresh_database(url: str, prefix: str = "parley_bench") -> FreshDatabase:
    """Create an empty database on the server `url` points at.

    The URL's own database is used only to connect (falling back to ``postgres``
    when it does not exist); the new one is named ``{prefix}_<random>``.
    """
    admin = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(admin)
    except asyncpg.InvalidCatalogNameError:
        admin = _with_database(admin, "postgres", "postgresql")
        conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return FreshDatabase(
        admin_dsn=admin, name=name, url=_with_database(admin, name, "postgresql+asyncpg")
    )


async def drop_database(database: FreshDatabase) -> None:
    """Drop a database made by `create_fresh_database`, disconnecting anyone on it."""
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- envelopes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealJob:
    """Everything a worker process needs to seal one sender's envelopes (picklable)."""

    room_id: str
    roster_version: int
    sender_device: str
    sender_private_key: bytes
    recipients: tuple[tuple[str, bytes], ...]
    first_index: int
    count: int
    text_bytes: int
    random_text: bool = False
    """Random plaintext of exactly `text_bytes` characters instead of a padded label."""


def seal_batch(job: SealJob) -> list[tuple[str, bytes]]:
    """Seal `job.count` text messages; return (message id, JSON body) pairs."""
    key = SigningKey.from_bytes(job.sender_private_key)
    recipients = [Recipient(device_id, public) for device_id, public in job.recipients]
    out = []
    for i in range(job.first_index, job.first_index + job.count):
        text = (
            secrets.token_urlsafe(job.text_bytes)[: job.text_bytes]
            if job.random_text
            else f"bench message {i} ".ljust(job.text_bytes, ".")
        )
        envelope = seal_envelope(
            content={"type": "text", "text": text},
            room_id=job.room_id,
            channel="plenary",
            roster_version=job.roster_version,
            sender_device=job.sender_device,
            sender_key=key,
            recipients=recipients,
            sent_at=time.time_ns() // 1_000_000,
        )
        out.append((envelope.header.message_id, envelope.model_dump_json().encode()))
    return out


# --- closed-loop load ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimedRequest:
    """One timed POST: when it started and ended (perf_counter seconds) and its status."""

    key: str
    start: float
    end: float
    status: int


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one closed-loop load phase measured."""

    started: float
    finished: float
    requests: list[TimedRequest]

    @property
    def elapsed(self) -> float:
        """Seconds from the common start to the last answer."""
        return self.finished - self.started

    @property
    def per_second(self) -> float:
        """Requests answered per second."""
        return len(self.requests) / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def errors(self) -> int:
        """Answers that were not 2xx."""
        return sum(1 for r in self.requests if not 200 <= r.status < 300)


def sender_client(base_url: str) -> httpx.AsyncClient:
    """The HTTP client one sender uses: one keep-alive connection, no retries."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=60.0,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def closed_loop(
    clients: Sequence[httpx.AsyncClient],
    tokens: Sequence[str],
    path: str,
    bodies: Sequence[Sequence[tuple[str, bytes]]],
    on_start: dict[str, float] | None = None,
) -> LoadResult:
    """Each client POSTs its bodies one after another, all clients at once.

    `on_start`, if given, receives each request's start time by key before the
    request is sent (so a receiver can match deliveries against it).
    """
    go = asyncio.Event()
    records: list[TimedRequest] = []

    async def sender(
        client: httpx.AsyncClient, token: str, own: Sequence[tuple[str, bytes]]
    ) -> None:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        await go.wait()
        for key, body in own:
            start = time.perf_counter()
            if on_start is not None:
                on_start[key] = start
            response = await client.post(path, content=body, headers=headers)
            records.append(TimedRequest(key, start, time.perf_counter(), response.status_code))

    tasks = [
        asyncio.ensure_future(sender(c, t, b))
        for c, t, b in zip(clients, tokens, bodies, strict=True)
    ]
    await asyncio.sleep(0)
    started = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    finished = max((r.end for r in records), default=started)
    return LoadResult(started=started, finished=finished, requests=records)


# --- figures ------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99 of durations given in seconds, in milliseconds (linear interpolation)."""
    if len(seconds) < 2:
        value = round(seconds[0] * 1000, 2) if seconds else None
        return {"p50": value, "p95": value, "p99": value}
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {
        "p50": round(cuts[49] * 1000, 2),
        "p95": round(cuts[94] * 1000, 2),
        "p99": round(cuts[98] * 1000, 2),
    }


# --- the trivial baseline -----------------------------------------------------------------


def trivial_app() -> FastAPI:
    """A FastAPI app with one POST route that reads the body and answers {"ok": true}."""
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/post")
    async def post(request: Request) -> dict[str, bool]:
        await request.body()
        return {"ok": True}

    return app


def trivial_argv(port: int) -> list[str]:
    """uvicorn serving `trivial_app` as `parley serve` serves Parley (same defaults)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.common:trivial_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--ws",
        "websockets",
    ]
