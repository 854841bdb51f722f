"""Many rooms, many live connections: delivery latency under steady traffic and
server memory per idle WebSocket connection, against a real `parley serve`.

    .venv/bin/python -m bench.fanout [--database-url URL] [--rooms 200] [--members 5]
                                     [--rate 200] [--seconds 15]

What it does:

1. Starts `parley serve` (SQLite in a temporary directory, or a fresh PostgreSQL
   database as `bench.messages` does), with the rate limit and the per-device
   stream limit raised out of reach.
2. Enrolls a mediator and ``members - 1`` parties and opens ``--rooms`` rooms,
   each with all of them: every room has ``--members`` members.
3. Opens one WebSocket stream per member per room (``rooms * members``
   connections, 1,000 by default) and waits until every one is subscribed. The
   server's resident memory before and after, divided by the number of
   connections, is the memory per idle connection.
4. Seals ``rate * seconds`` envelopes (party A, plenary, to the room's devices)
   and sends them open-loop at ``--rate`` messages/s in total, round-robin over
   the rooms. Every stream notes when each message arrives; delivery latency is
   arrival minus the start of the send, over every (message, stream) pair.

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
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    FreshDatabase,
    SealJob,
    ServiceProcess,
    backend_of,
    create_fresh_database,
    drop_database,
    log,
    percentiles_ms,
    process_cpu_seconds,
    seal_batch,
    sender_client,
    start_parley,
)
from bench.messages import PASSPHRASE, SCRYPT_N, Receiver, admin_enroll, split
from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Side

TARGET_DELIVERY_P99_MS = 100.0
TARGET_IDLE_KIB_PER_CONNECTION = 64.0
SEND_CONNECTIONS = 32


@dataclass(frozen=True, slots=True)
class Options:
    """The command line, parsed."""

    database_url: str | None
    rooms: int
    members: int
    rate: float
    seconds: float
    text_bytes: int
    drain_timeout: float


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description=(
            "Delivery latency over many rooms with live members, and server memory per "
            "idle WebSocket connection. Prints one JSON line on stdout."
        ),
    )
    parser.add_argument("--database-url", default=None, help="As for bench.messages.")
    parser.add_argument("--rooms", type=int, default=200, help="Rooms (default 200).")
    parser.add_argument(
        "--members", type=int, default=5, help="Members per room, each live (default 5)."
    )
    parser.add_argument(
        "--rate", type=float, default=200.0, help="Messages per second in total (default 200)."
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="Length of the traffic phase (default 15)."
    )
    parser.add_argument(
        "--text-bytes", type=int, default=256, help="Plaintext bytes per message (default 256)."
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=60.0, help="Seconds to wait for deliveries."
    )
    ns = parser.parse_args(argv)
    if ns.rooms < 1 or ns.members < 2 or ns.rate <= 0 or ns.seconds <= 0:
        parser.error("need --rooms >= 1, --members >= 2, --rate > 0, --seconds > 0")
    return Options(
        database_url=ns.database_url,
        rooms=ns.rooms,
        members=ns.members,
        rate=ns.rate,
        seconds=ns.seconds,
        text_bytes=ns.text_bytes,
        drain_timeout=ns.drain_timeout,
    )


def rss_kib(pid: int) -> int | None:
    """Resident memory of a process in KiB (Linux /proc), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass(slots=True)
class Cast:
    """The people, their rooms, and what a sender seals to."""

    clients: list[ParleyClient]
    rooms: list[tuple[str, int]]
    """(room id, roster version) of every room."""
    recipients: tuple[tuple[str, bytes], ...]

    async def aclose(self) -> None:
        """Close every client."""
        for client in self.clients:
            await client.aclose()


async def enroll_cast(
    server: ServiceProcess, env: dict[str, str], home: Path, options: Options
) -> Cast:
    """A mediator and `members - 1` parties, all in each of `rooms` rooms."""
    names = [("mediator", "Fanout Mediator")] + [
        ("party", f"Fanout Party {i}") for i in range(options.members - 1)
    ]
    tokens = [await admin_enroll(env, role, name) for role, name in names]
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
    started = time.perf_counter()
    rooms: list[tuple[str, int]] = []
    for r in range(options.rooms):
        room = await mediator.create_room(f"Fanout room {r}")
        for i, party in enumerate(parties):
            side = Side.A if i % 2 == 0 else Side.B
            room = await mediator.add_member(room.room_id, party.whoami()["account_id"], side)
        rooms.append((room.room_id, room.roster_version))
        if (r + 1) % 50 == 0:
            log(f"{r + 1} rooms in {time.perf_counter() - started:.1f} s")
    seen = await parties[0].room(rooms[0][0])
    recipients: list[tuple[str, bytes]] = []
    for member in seen.members:
        account = await parties[0].account(member.account_id)
        for device_id in member.device_ids:
            key = account.devices[device_id].encryption_key
            if key is None:
                raise RuntimeError(f"device {device_id} has no encryption key")
            recipients.append((device_id, key))
    return Cast(clients=clients, rooms=rooms, recipients=tuple(recipients))


async def seal_all(cast: Cast, options: Options) -> list[list[tuple[str, bytes]]]:
    """Each room's envelopes from party A, sealed in worker processes."""
    total = round(options.rate * options.seconds)
    state = cast.clients[1].keystore.state
    jobs = [
        SealJob(
            room_id=room_id,
            roster_version=version,
            sender_device=state.device_id,
            sender_private_key=state.device_key.private_bytes(),
            recipients=cast.recipients,
            first_index=0,
            count=count,
            text_bytes=options.text_bytes,
            random_text=True,
        )
        for (room_id, version), count in zip(cast.rooms, split(total, len(cast.rooms)), strict=True)
    ]
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=context) as pool:
        return list(
            await asyncio.gather(*(loop.run_in_executor(pool, seal_batch, j) for j in jobs))
        )


async def open_loop(
    url: str, token: str, cast: Cast, batches: list[list[tuple[str, bytes]]], rate: float
) -> tuple[dict[str, float], int, float]:
    """Send every envelope at `rate` per second in total, round-robin over the rooms;
    return each message's send start, the number of failed sends, and the elapsed time."""
    order: list[tuple[str, str, bytes]] = []
    for i in range(max(map(len, batches))):
        for (room_id, _), batch in zip(cast.rooms, batches, strict=True):
            if i < len(batch):
                order.append((room_id, *batch[i]))
    starts: dict[str, float] = {}
    failures = 0
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    schedule = iter(enumerate(order))
    # A pool of senders, each with its own keep-alive connection (one shared httpx
    # client with many waiting requests is far slower than the server).
    clients = [sender_client(url) for _ in range(SEND_CONNECTIONS)]
    began = time.perf_counter()

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for n, (room_id, key, body) in schedule:
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            starts[key] = time.perf_counter()
            response = await client.post(
                f"/v1/rooms/{room_id}/messages", content=body, headers=headers
            )
            if response.status_code != 201:
                failures += 1

    try:
        await asyncio.gather(*(sender(c) for c in clients))
    finally:
        for client in clients:
            await client.aclose()
    return starts, failures, time.perf_counter() - began


async def run(options: Options) -> dict[str, Any]:
    """Run the benchmark; return its figures."""
    fresh: FreshDatabase | None = None
    database_url = options.database_url
    if database_url and database_url.startswith("postgresql"):
        fresh = await create_fresh_database(database_url)
        database_url = fresh.url
    workdir = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    try:
        return await _run(options, workdir, database_url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if fresh is not None:
            await drop_database(fresh)


async def _run(options: Options, workdir: Path, database_url: str | None) -> dict[str, Any]:
    server, env = await start_parley(
        workdir, database_url, PARLEY_WS_CONNECTIONS_PER_DEVICE=str(options.rooms + 1)
    )
    receivers: list[Receiver] = []
    running: list[asyncio.Future[None]] = []
    try:
        log(f"enrolling {options.members} people into {options.rooms} rooms")
        cast = await enroll_cast(server, env, workdir / "profiles", options)
        try:
            log(f"sealing {round(options.rate * options.seconds)} envelopes")
            batches = await seal_all(cast, options)
            tokens = [await c.token() for c in cast.clients]
            ws_base = server.url.replace("http://", "ws://", 1)
            rss_before = rss_kib(server.pid)
            for room_id, _ in cast.rooms:
                for token in tokens:
                    receivers.append(
                        Receiver(url=f"{ws_base}/v1/rooms/{room_id}/stream", token=token, cursor=0)
                    )
            async with asyncio.timeout(300):
                # In steps of 50, so that handshakes do not time out on a loaded machine.
                for start in range(0, len(receivers), 50):
                    step = receivers[start : start + 50]
                    running.extend(asyncio.ensure_future(r.run()) for r in step)
                    await asyncio.gather(*(r.ready.wait() for r in step))
            await asyncio.sleep(1.0)  # let the replays of each room's rosters finish
            rss_after = rss_kib(server.pid)
            log(f"{len(receivers)} streams subscribed; traffic at {options.rate}/s")
            server_cpu = process_cpu_seconds(server.pid)
            load_average = os.getloadavg()[0]
            starts, failures, elapsed = await open_loop(
                server.url, tokens[1], cast, batches, options.rate
            )
            server_cpu_after = process_cpu_seconds(server.pid)
            by_room: dict[str, list[str]] = {
                room_id: [k for k, _ in batch]
                for (room_id, _), batch in zip(cast.rooms, batches, strict=True)
            }
            try:
                async with asyncio.timeout(options.drain_timeout):
                    for i, receiver in enumerate(receivers):
                        await receiver.wait_for(by_room[cast.rooms[i // len(tokens)][0]])
            except TimeoutError:
                log("some deliveries are still missing; giving up")
        finally:
            await cast.aclose()
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server.stop()
    delivery: list[float] = []
    missing = duplicates = anomalies = 0
    for i, receiver in enumerate(receivers):
        for key in by_room[cast.rooms[i // len(tokens)][0]]:
            if key in receiver.arrivals:
                delivery.append(receiver.arrivals[key] - starts[key])
            else:
                missing += 1
        duplicates += receiver.duplicates
        anomalies += receiver.seq_anomalies
    sent = len(starts)
    percentiles = percentiles_ms(delivery)
    idle = (
        None
        if rss_before is None or rss_after is None
        else round((rss_after - rss_before) / len(receivers), 1)
    )
    cpu = (
        None
        if server_cpu is None or server_cpu_after is None
        else round((server_cpu_after - server_cpu) * 1000 / sent, 3)
    )
    return {
        "bench": "fanout",
        "backend": backend_of(database_url),
        "rooms": options.rooms,
        "members_per_room": options.members,
        "connections": len(receivers),
        "target_rate_per_second": options.rate,
        "achieved_rate_per_second": round(sent / elapsed, 1),
        "messages": sent,
        "send_errors": failures,
        "deliveries": len(delivery),
        "delivery_p50_ms": percentiles["p50"],
        "delivery_p95_ms": percentiles["p95"],
        "delivery_p99_ms": percentiles["p99"],
        "exactly_once": missing == 0 and duplicates == 0 and anomalies == 0 and failures == 0,
        "missing": missing,
        "duplicates": duplicates,
        "seq_anomalies": anomalies,
        "server_rss_kib_before_streams": rss_before,
        "server_rss_kib_with_streams": rss_after,
        "server_kib_per_idle_connection": idle,
        "server_cpu_ms_per_message": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_start": round(load_average, 2),
        "meets_delivery_target": (
            percentiles["p99"] is not None and percentiles["p99"] < TARGET_DELIVERY_P99_MS
        ),
        "meets_memory_target": idle is not None and idle < TARGET_IDLE_KIB_PER_CONNECTION,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run, then print the JSON line."""
    options = parse_args(argv)
    print(json.dumps(asyncio.run(run(options))), flush=True)


if __name__ == "__main__":
    main()
