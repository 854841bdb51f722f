"""Real `parley serve` processes for end-to-end tests."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

STARTUP_TIMEOUT = 60.0
"""Generous: on a loaded 2-core machine, with parallel test workers, start-up is slow."""


PORTS_PER_WORKER = 1000
# PARLEY_TEST_PORT_BASE moves the blocks, so two suite runs on one machine (two
# checkouts) do not share ports; blocks must stay below the ephemeral range (32768).
FIRST_WORKER_PORT = int(os.environ.get("PARLEY_TEST_PORT_BASE", "20000"))
"""Below Linux's ephemeral range (32768 and up), so no outgoing connection holds one."""

_next_port = itertools.count()


def _worker_number() -> int | None:
    """This pytest-xdist worker's number (``gw3`` -> 3), or None outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else None


def free_port() -> int:
    """A TCP port nobody listens on right now.

    Under pytest-xdist each worker takes ports from a block of its own, in turn, so
    two workers never pick the same port between one's probe and its server's bind
    (and a restarted server keeps its port without another worker taking it).
    """
    worker = _worker_number()
    if worker is None or worker >= (32768 - FIRST_WORKER_PORT) // PORTS_PER_WORKER:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    base = FIRST_WORKER_PORT + worker * PORTS_PER_WORKER
    for _ in range(PORTS_PER_WORKER):
        candidate = base + next(_next_port) % PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise RuntimeError(f"no free port in {base}..{base + PORTS_PER_WORKER - 1}")


def parley_command() -> list[str]:
    """How to run the `parley` command of this environment."""
    return [sys.executable, "-c", "from client_sdk.cli.main import main; main()"]


_PREPARED = (
    "import sys; import server.app, server.cli, uvicorn; sys.stdin.readline(); "
    "from client_sdk.cli.main import main; main()"
)
"""`parley serve` with its modules imported first, waiting for a line on stdin to go on."""


class ServerProcess:
    """A `parley serve` subprocess on a free port."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        port: int | None = None,
        *,
        log_level: str = "warning",
    ) -> None:
        self.env = env
        self.log_level = log_level
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._prepared: subprocess.Popen[bytes] | None = None

    def prepare(self) -> None:
        """Start the next `start`'s process now, in the background: it imports the server
        and waits, holding no port, so that `start` only lets it go on (a restart after
        a crash then takes a fraction of a cold start)."""
        if self._prepared is None:
            self._prepared = self._spawn([sys.executable, "-c", _PREPARED], stdin=subprocess.PIPE)

    def _spawn(self, command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [*command, "serve", "--port", str(self.port), "--log-level", self.log_level],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                **options,
            )

    def start(self) -> None:
        """Start the process (the prepared one, if any) and wait until it answers its
        health check."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared.stdin is not None:
            with contextlib.suppress(BrokenPipeError):  # died: the health check says so
                prepared.stdin.write(b"go\n")
                prepared.stdin.close()
            self.process = prepared
        else:
            self.process = self._spawn(parley_command())
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()  # not left running on a database its caller is about to drop
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL) and wait for it (and drop a
        prepared one)."""
        self._drop_prepared()
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def _drop_prepared(self) -> None:
        if self._prepared is not None:
            self._prepared.kill()
            self._prepared.wait(timeout=10)
            self._prepared = None

    def kill(self) -> None:
        """Kill the process abruptly (a crash), and wait for it (a prepared one is kept
        for the restart)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def server_env(data_dir: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a server process: this one's, plus PARLEY_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env["PARLEY_DATA_DIR"] = str(data_dir)
    if database_url:
        env["PARLEY_DATABASE_URL"] = database_url
    env.update(extra)
    return env


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[ServerProcess]:
    """A started server, stopped when the block ends."""
    server = ServerProcess(env, log_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
