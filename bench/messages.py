"""Message throughput and delivery latency of a real `parley serve` process.

    .venv/bin/python -m bench.messages [--shape peer|delegation] [--database-url URL]
                                       [--concurrency 16] [--messages N]

Two shapes of room:

- ``peer``: a mediator and two parties; all C senders (C = ``--concurrency``)
  share party A's device, each on its own connection, sending 768 random
  plaintext bytes per message to the room's three devices; party B receives
  over the WebSocket.
- ``delegation`` (the default): a mediator and C parties, each sender its own
  party device, every envelope sealed to all C + 1 devices (about 28 KB at
  C = 16, 120 plaintext bytes); the mediator receives.

What it does:

1. Starts `parley serve` on a free port: SQLite in a temporary data directory
   by default; with ``--database-url postgresql+asyncpg://USER@HOST:PORT/DB`` it
   creates a fresh, empty database ``parley_bench_<random>`` on that server (DB
   is only used to connect) and drops it afterwards unless ``--keep-database``.
   The per-device rate limit is raised out of reach
   (``PARLEY_RATE_LIMIT_PER_SECOND``/``_BURST``) so it cannot shape the figures.
2. Enrolls the mediator and the parties of the shape through the real
   surfaces: ``parley admin enroll`` subprocesses for the tokens, the SDK's
   `ParleyClient.enroll` for the keys. The mediator creates a room and adds the
   parties (alternately on sides a and b).
3. Before anything is timed, seals and signs every envelope with
   `seal_envelope`, to every device of the room's verified roster (worker
   processes share the sealing).
4. Timed phase: C senders, each with its own keep-alive `httpx.AsyncClient` and
   its device's bearer token, POST their envelopes back to back; one WebSocket
   receiver (subscribed before the phase) notes when each message arrives.
5. Measures the same closed loop (same client set-up, same bodies, same
   number of requests and concurrency) against a trivial FastAPI app under
   uvicorn, and reports Parley's throughput as a fraction of it.

One JSON line of figures goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.common import (
    REPO_ROOT,
    FreshDatabase,
    LoadResult,
    SealJob,
    ServiceProcess,
    backend_of,
    clean_env,
    closed_loop,
    create_fresh_database,
    drop_database,
    free_port,
    log,
    parley_argv,
    percentiles_ms,
    process_cpu_seconds,
    seal_batch,
    sender_client,
    start_parley,
    trivial_argv,
)
from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Side

SYNAPSE_BASELINE_MSGS_PER_S = 85.0
"""Orientation only: messages/s of a Synapse homeserver measured elsewhere."""
TARGET_MSGS_PER_S = 850.0
PASSPHRASE = "bench passphrase"  # noqa: S105 - guards throwaway keystores in a temp dir
SCRYPT_N = 2**10
SHAPES = ("peer", "delegation")
TEXT_BYTES = {"peer": 768, "delegation": 120}
ENROLL_PARALLELISM = 4


@dataclass(frozen=True, slots=True)
class Options:
    """The command line, parsed."""

    shape: str
    database_url: str | None
    concurrency: int
    messages: int
    warmup: int
    text_bytes: int
    drain_timeout: float
    keep_database: bool
    py_spy: Path | None
    py_spy_all_threads: bool
    skip_trivial: bool


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.messages",
        description=(
            "Parley message throughput and send-to-delivery latency against a real "
            "`parley serve` process, compared with a trivial FastAPI POST endpoint "
            "under the same load. Prints one JSON line on stdout."
        ),
    )
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="delegation",
        help=(
            "peer: a mediator and two parties, every sender on party A's device, party B "
            "receiving; delegation: a mediator and one party per sender, every envelope "
            "sealed to all of them, the mediator receiving (default delegation)."
        ),
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help=(
            "PostgreSQL server to run on, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres."
            " The bench connects with it, creates a fresh empty database "
            "parley_bench_<random> for the run and drops it at the end (see "
            "--keep-database); the database named in the URL is only used to connect "
            "(postgres if it does not exist). A sqlite+aiosqlite:// URL is used as given. "
            "Default: SQLite in a temporary directory."
        ),
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help=(
            "Concurrent senders (default 16): each its own party device (delegation) or "
            "each its own connection of party A's device (peer)."
        ),
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=1200,
        help=(
            "Timed messages in total, split evenly over the senders (default 1200: about "
            "15 s at the ~80 messages/s measured on a 2-core machine)."
        ),
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=8,
        help="Untimed messages per sender before the timed phase (default 8).",
    )
    parser.add_argument(
        "--text-bytes",
        type=int,
        default=None,
        help=(
            "Plaintext length of each message before padding (default 768 random bytes "
            "for peer, 120 for delegation)."
        ),
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="Seconds to wait for outstanding deliveries after the last send (default 30).",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="Do not drop the fresh PostgreSQL database at the end.",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="PATH",
        help=(
            "Sample the server with py-spy (pip install py-spy) during the timed phase "
            "and write collapsed stacks (--format raw, one line per stack and thread) to "
            "PATH. By default only the thread holding the GIL is sampled, which "
            "attributes the server's Python CPU time; see --py-spy-all-threads."
        ),
    )
    parser.add_argument(
        "--py-spy-all-threads",
        action="store_true",
        help=(
            "With --py-spy, sample every thread instead (includes the SQLite worker "
            "threads and time py-spy cannot tell from idle waiting)."
        ),
    )
    parser.add_argument(
        "--skip-trivial",
        action="store_true",
        help="Do not measure the trivial FastAPI baseline (its figures are then null).",
    )
    ns = parser.parse_args(argv)
    if ns.concurrency < 1 or ns.messages < ns.concurrency or ns.warmup < 0:
        parser.error("need --concurrency >= 1, --messages >= --concurrency, --warmup >= 0")
    return Options(
        shape=ns.shape,
        database_url=ns.database_url,
        concurrency=ns.concurrency,
        messages=ns.messages,
        warmup=ns.warmup,
        text_bytes=TEXT_BYTES[ns.shape] if ns.text_bytes is None else ns.text_bytes,
        drain_timeout=ns.drain_timeout,
        keep_database=ns.keep_database,
        py_spy=ns.py_spy,
        py_spy_all_threads=ns.py_spy_all_threads,
        skip_trivial=ns.skip_trivial,
    )


# --- set-up ---------------------------------------------------------------------------------


async def admin_enroll(env: dict[str, str], role: str, name: str) -> str:
    """A one-time enrollment token from `parley admin enroll` (on the server's database)."""
    process = await asyncio.create_subprocess_exec(
        *parley_argv("admin", "enroll", "--role", role, "--name", name, "--json"),
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"parley admin enroll failed: {err.decode(errors='replace')}")
    token: str = json.loads(out)["token"]
    return token


@dataclass(slots=True)
class Cast:
    """The enrolled people and their room."""

    mediator: ParleyClient
    parties: list[ParleyClient]
    senders: list[ParleyClient]
    """One per concurrent sender; in the peer shape, party A's client every time."""
    receiver: ParleyClient
    room_id: str
    roster_version: int
    last_seq: int
    recipients: tuple[tuple[str, bytes], ...]

    async def aclose(self) -> None:
        """Close every client."""
        for client in [self.mediator, *self.parties]:
            await client.aclose()


async def enroll_cast(
    server: ServiceProcess, env: dict[str, str], home: Path, shape: str, senders: int
) -> Cast:
    """Enroll a mediator and the shape's parties (two for peer, `senders` for
    delegation); open a room with all of them."""
    party_count = 2 if shape == "peer" else senders
    gate = asyncio.Semaphore(ENROLL_PARALLELISM)

    async def token(role: str, name: str) -> str:
        async with gate:
            return await admin_enroll(env, role, name)

    started = time.perf_counter()
    names = [("mediator", "Bench Mediator")] + [
        ("party", f"Bench Party {i}") for i in range(party_count)
    ]
    tokens = await asyncio.gather(*(token(role, name) for role, name in names))
    log(f"{len(tokens)} enrollment tokens from parley admin enroll in {_since(started)}")
    started = time.perf_counter()
    clients = [
        await ParleyClient.enroll(
            server=server.url,
            token=t,
            home=home / f"profile-{i}",
            passphrase=PASSPHRASE,
            scrypt_n=SCRYPT_N,
        )
        for i, t in enumerate(tokens)
    ]
    mediator, parties = clients[0], clients[1:]
    log(f"{len(clients)} devices enrolled through the SDK in {_since(started)}")
    started = time.perf_counter()
    room = await mediator.create_room("Bench room")
    for i, party in enumerate(parties):
        room = await mediator.add_member(
            room.room_id, party.whoami()["account_id"], Side.A if i % 2 == 0 else Side.B
        )
    log(
        f"room of {party_count + 1} members, roster version {room.roster_version}, "
        f"{_since(started)}"
    )
    # Recipients as `ParleyClient.send` finds them: every device of the verified
    # roster, with the encryption key its account certified.
    first = parties[0]
    seen = await first.room(room.room_id)
    recipients: list[tuple[str, bytes]] = []
    for member in seen.members:
        account = await first.account(member.account_id)
        for device_id in member.device_ids:
            key = account.devices[device_id].encryption_key
            if key is None:
                raise RuntimeError(f"device {device_id} has no encryption key")
            recipients.append((device_id, key))
    return Cast(
        mediator=mediator,
        parties=parties,
        senders=[first] * senders if shape == "peer" else parties,
        receiver=parties[1] if shape == "peer" else mediator,
        room_id=room.room_id,
        roster_version=seen.roster_version,
        last_seq=seen.last_seq,
        recipients=tuple(recipients),
    )


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


def split(total: int, parts: int) -> list[int]:
    """`total` split into `parts` near-equal counts."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def seal_all(
    cast: Cast, options: Options
) -> tuple[list[list[tuple[str, bytes]]], list[list[tuple[str, bytes]]]]:
    """Every sender's warm-up and timed envelopes, sealed in worker processes."""
    counts = split(options.messages, options.concurrency)
    jobs: list[SealJob] = []
    for sender, count in zip(cast.senders, counts, strict=True):
        state = sender.keystore.state
        jobs.append(
            SealJob(
                room_id=cast.room_id,
                roster_version=cast.roster_version,
                sender_device=state.device_id,
                sender_private_key=state.device_key.private_bytes(),
                recipients=cast.recipients,
                first_index=0,
                count=options.warmup + count,
                text_bytes=options.text_bytes,
                random_text=options.shape == "peer",
            )
        )
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=context) as pool:
        batches = await asyncio.gather(*(loop.run_in_executor(pool, seal_batch, j) for j in jobs))
    warmups = [batch[: options.warmup] for batch in batches]
    timed = [batch[options.warmup :] for batch in batches]
    return warmups, timed


# --- the receiver ---------------------------------------------------------------------------


@dataclass(slots=True)
class Receiver:
    """One WebSocket subscriber noting when each message id arrives."""

    url: str
    token: str
    cursor: int
    arrivals: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    seq_anomalies: int = 0
    reconnects: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: set[str] = field(default_factory=set)
    all_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Stream events forever, resuming from the cursor if the connection drops."""
        while True:
            try:
                async with connect(
                    f"{self.url}?after={self.cursor}",
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    max_size=None,
                ) as ws:
                    async for raw in ws:
                        self._frame(raw, time.perf_counter())
            except (ConnectionClosed, TimeoutError, OSError):
                pass  # dropped, or the handshake timed out on a loaded machine: resume
            self.reconnects += 1
            log(f"receiver: connection dropped; resuming after seq {self.cursor}")
            await asyncio.sleep(0.1)

    def _frame(self, raw: str | bytes, now: float) -> None:
        frame: dict[str, Any] = json.loads(raw)
        kind = frame.get("type")
        if kind == "ready":
            self.ready.set()
        elif kind == "event":  # one event per frame
            self._event(frame["event"], now)
        elif kind == "batch":  # a page of events with their proofs
            for event in frame["events"]:
                self._event(event, now)

    def _event(self, event: dict[str, Any], now: float) -> None:
        seq = int(event["seq"])
        if seq != self.cursor + 1:
            self.seq_anomalies += 1
        self.cursor = max(self.cursor, seq)
        if event["kind"] != "message":
            return
        message_id = str(event["message_id"])
        if message_id in self.arrivals:
            self.duplicates += 1
        else:
            self.arrivals[message_id] = now
        if self.waiting:
            self.waiting.discard(message_id)
            if not self.waiting:
                self.all_arrived.set()

    async def wait_for(self, ids: Sequence[str]) -> None:
        """Return once every id in `ids` has arrived (bound it with `asyncio.timeout`)."""
        self.waiting = set(ids) - self.arrivals.keys()
        while self.waiting:
            self.all_arrived.clear()
            await self.all_arrived.wait()


# --- py-spy -----------------------------------------------------------------------------------


def start_py_spy(pid: int, output: Path, *, all_threads: bool) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` until interrupted, collapsed stacks per thread."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    mode = () if all_threads else ("--gil",)
    return subprocess.Popen(
        [
            *(exe, "record", "--pid", str(pid), "--rate", "250", "--threads", *mode),
            *("--format", "raw", "--output", str(output), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_py_spy(process: subprocess.Popen[bytes]) -> None:
    """Interrupt py-spy so that it writes its output, and wait for it."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- phases ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParleyFigures:
    """What the Parley phase measured."""

    load: LoadResult
    delivery_seconds: list[float]
    sent_total: int
    delivered: int
    duplicates: int
    missing: int
    unexpected: int
    seq_anomalies: int
    reconnects: int
    server_cpu_seconds: float | None
    client_cpu_seconds: float
    load_average: float


async def parley_phase(
    server: ServiceProcess,
    cast: Cast,
    warmups: list[list[tuple[str, bytes]]],
    timed: list[list[tuple[str, bytes]]],
    options: Options,
) -> ParleyFigures:
    """Warm up, then run the timed closed loop while the receiver listens."""
    path = f"/v1/rooms/{cast.room_id}/messages"
    tokens = [await s.token() for s in cast.senders]
    ws_base = server.url.replace("http://", "ws://", 1)
    receiver = Receiver(
        url=f"{ws_base}/v1/rooms/{cast.room_id}/stream",
        token=await cast.receiver.token(),
        cursor=cast.last_seq,
    )
    receiving = asyncio.ensure_future(receiver.run())
    clients = [sender_client(server.url) for _ in cast.senders]
    try:
        ready = asyncio.ensure_future(receiver.ready.wait())
        done, _ = await asyncio.wait(
            {ready, receiving}, timeout=30, return_when=asyncio.FIRST_COMPLETED
        )
        if receiving in done:
            receiving.result()  # the receiver failed: raise its error
        if ready not in done:
            ready.cancel()
            raise RuntimeError("the WebSocket receiver did not get ready in 30 s")
        if options.warmup:
            log(f"warm-up: {sum(map(len, warmups))} messages")
            warm = await closed_loop(clients, tokens, path, warmups)
            if warm.errors:
                raise RuntimeError(f"{warm.errors} warm-up sends failed")
            async with asyncio.timeout(options.drain_timeout):
                await receiver.wait_for([k for w in warmups for k, _ in w])
        log(f"timed phase: {options.messages} messages from {options.concurrency} senders")
        starts: dict[str, float] = {}
        timed_ids = [k for t in timed for k, _ in t]
        spy = (
            start_py_spy(server.pid, options.py_spy, all_threads=options.py_spy_all_threads)
            if options.py_spy
            else None
        )
        load_average = os.getloadavg()[0]
        server_cpu = process_cpu_seconds(server.pid)
        client_cpu = time.process_time()
        try:
            load = await closed_loop(clients, tokens, path, timed, on_start=starts)
            server_cpu_after = process_cpu_seconds(server.pid)
            client_cpu = time.process_time() - client_cpu
            try:
                async with asyncio.timeout(options.drain_timeout):
                    await receiver.wait_for(timed_ids)
            except TimeoutError:
                log(f"receiver: {len(receiver.waiting)} messages still missing; giving up")
        finally:
            if spy is not None:
                stop_py_spy(spy)
    finally:
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
        for client in clients:
            await client.aclose()
    delivery = [receiver.arrivals[k] - starts[k] for k in timed_ids if k in receiver.arrivals]
    sent = [*timed_ids, *(k for w in warmups for k, _ in w)]
    return ParleyFigures(
        load=load,
        delivery_seconds=delivery,
        sent_total=len(sent),
        delivered=len(receiver.arrivals),
        duplicates=receiver.duplicates,
        missing=sum(1 for k in sent if k not in receiver.arrivals),
        unexpected=len(receiver.arrivals.keys() - set(sent)),
        seq_anomalies=receiver.seq_anomalies,
        reconnects=receiver.reconnects,
        server_cpu_seconds=(
            None
            if server_cpu is None or server_cpu_after is None
            else server_cpu_after - server_cpu
        ),
        client_cpu_seconds=client_cpu,
        load_average=load_average,
    )


async def trivial_phase(
    workdir: Path,
    tokens: list[str],
    warmups: list[list[tuple[str, bytes]]],
    timed: list[list[tuple[str, bytes]]],
) -> LoadResult:
    """The same closed loop against the trivial FastAPI app."""
    port = free_port()
    server = ServiceProcess(
        trivial_argv(port), env=clean_env(), port=port, log_path=workdir / "trivial.log"
    )
    await server.start()
    clients = [sender_client(server.url) for _ in timed]
    try:
        await closed_loop(clients, tokens, "/post", warmups)
        log(f"trivial baseline: {sum(map(len, timed))} posts")
        return await closed_loop(clients, tokens, "/post", timed)
    finally:
        for client in clients:
            await client.aclose()
        server.stop()


# --- main -------------------------------------------------------------------------------------


async def run(options: Options) -> dict[str, Any]:
    """Run the benchmark; return its figures."""
    fresh: FreshDatabase | None = None
    database_url = options.database_url
    if database_url and database_url.startswith("postgresql"):
        fresh = await create_fresh_database(database_url)
        database_url = fresh.url
        log(f"PostgreSQL: fresh database {fresh.name}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-messages-"))
    try:
        return await _run(options, workdir, database_url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if fresh is not None and not options.keep_database:
            await drop_database(fresh)


async def _run(options: Options, workdir: Path, database_url: str | None) -> dict[str, Any]:
    server, env = await start_parley(workdir, database_url)
    try:
        log(f"{options.shape} shape: enrolling the cast")
        cast = await enroll_cast(
            server, env, workdir / "profiles", options.shape, options.concurrency
        )
        try:
            total = options.messages + options.warmup * options.concurrency
            log(f"sealing {total} envelopes to {len(cast.recipients)} devices each")
            started = time.perf_counter()
            warmups, timed = await seal_all(cast, options)
            log(f"sealed in {time.perf_counter() - started:.1f} s")
            tokens = [await s.token() for s in cast.senders]
            figures = await parley_phase(server, cast, warmups, timed, options)
        finally:
            await cast.aclose()
    finally:
        server.stop()
    trivial = None if options.skip_trivial else await trivial_phase(workdir, tokens, warmups, timed)
    bodies = [len(body) for batch in timed for _, body in batch]
    return report(options, database_url, cast, figures, trivial, sum(bodies) / len(bodies))


def report(
    options: Options,
    database_url: str | None,
    cast: Cast,
    figures: ParleyFigures,
    trivial: LoadResult | None,
    envelope_bytes: float,
) -> dict[str, Any]:
    """The JSON line."""
    load = figures.load
    send = percentiles_ms([r.end - r.start for r in load.requests])
    delivery = percentiles_ms(figures.delivery_seconds)
    trivial_rate = None if trivial is None else trivial.per_second
    exactly_once = (
        figures.missing == 0
        and figures.duplicates == 0
        and figures.unexpected == 0
        and figures.seq_anomalies == 0
        and load.errors == 0
    )
    server_cpu = figures.server_cpu_seconds
    return {
        "bench": "messages",
        "shape": options.shape,
        "backend": backend_of(database_url),
        "concurrency": options.concurrency,
        "messages": len(load.requests),
        "warmup_messages": options.warmup * options.concurrency,
        "recipients_per_message": len(cast.recipients),
        "envelope_bytes": round(envelope_bytes),
        "rate_limit_disabled": True,
        "parley_sends_per_second": round(load.per_second, 1),
        "parley_elapsed_s": round(load.elapsed, 3),
        "send_errors": load.errors,
        "send_p50_ms": send["p50"],
        "send_p95_ms": send["p95"],
        "send_p99_ms": send["p99"],
        "delivery_p50_ms": delivery["p50"],
        "delivery_p95_ms": delivery["p95"],
        "delivery_p99_ms": delivery["p99"],
        "sent_total": figures.sent_total,
        "delivered": figures.delivered,
        "exactly_once": exactly_once,
        "duplicates": figures.duplicates,
        "missing": figures.missing,
        "unexpected": figures.unexpected,
        "seq_anomalies": figures.seq_anomalies,
        "ws_reconnects": figures.reconnects,
        "server_cpu_ms_per_message": (
            None if server_cpu is None else round(server_cpu * 1000 / len(load.requests), 3)
        ),
        "server_cpu_utilization": (
            None if server_cpu is None else round(server_cpu / load.elapsed, 2)
        ),
        "client_cpu_ms_per_message": round(
            figures.client_cpu_seconds * 1000 / len(load.requests), 3
        ),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_start": round(figures.load_average, 2),
        "trivial_posts_per_second": None if trivial_rate is None else round(trivial_rate, 1),
        "trivial_send_errors": None if trivial is None else trivial.errors,
        "ratio_vs_trivial": (
            None if not trivial_rate else round(load.per_second / trivial_rate, 3)
        ),
        "synapse_baseline_msgs_per_s": SYNAPSE_BASELINE_MSGS_PER_S,
        "ratio_vs_synapse": round(load.per_second / SYNAPSE_BASELINE_MSGS_PER_S, 2),
        "target_msgs_per_s": TARGET_MSGS_PER_S,
        "meets_target": load.per_second >= TARGET_MSGS_PER_S,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run, then print the JSON line."""
    options = parse_args(argv)
    figures = asyncio.run(run(options))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
