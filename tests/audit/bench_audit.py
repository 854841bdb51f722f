"""How fast `audit verify` checks a log, against this machine's raw Ed25519 verify rate.

    python -m tests.audit.bench_audit [--messages 5000] [--online 3000] [--rounds 3]

Offline: a synthetic room log (`tests.audit.synthetic`) as a bundle, verified
with `verify_bundle`, parsing the file included. Online: a real room on a
temporary SQLite server in process, filled with signed envelopes through the
API, then verified by its auditor with `verify_log` (fetching included).
Each round measures the raw rate first (one core, in process: Ed25519 verify
of 300-byte messages), because the machine may be shared. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.audit import parse_bundle, verify_bundle, verify_log
from client_sdk.client import ParleyClient
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import Header, signed_bytes
from client_sdk.protocol.keys import SigLabel
from client_sdk.protocol.models import Role, Side
from server.app import create_app
from server.config import Settings
from server.storage.rooms import RoomRepository
from tests.audit import synthetic
from tests.support.server import running_server, server_env


def raw_verify_rate(count: int = 4000) -> float:
    """Ed25519 verifications per second on one core, in this process."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    messages = [os.urandom(300) for _ in range(count)]
    signatures = [key.sign(m) for m in messages]
    started = time.perf_counter()
    for message, signature in zip(messages, signatures, strict=True):
        public.verify(signature, message)
    return count / (time.perf_counter() - started)


def offline(messages: int, rounds: int) -> dict[str, Any]:
    """Verify a synthetic bundle `rounds` times."""
    data = synthetic.room(messages=messages).bundle().to_bytes()
    results = []
    for _ in range(rounds):
        raw = raw_verify_rate()
        started = time.perf_counter()
        report = verify_bundle(parse_bundle(data))
        rate = report.size / (time.perf_counter() - started)
        results.append({"raw_per_s": round(raw), "entries_per_s": round(rate)})
    return _summary("offline bundle", messages + 3, results, bundle_mb=len(data) / 1e6)


def online(messages: int, rounds: int) -> dict[str, Any]:
    """Fill a room on a `parley serve` process, then audit it `rounds` times over HTTP.

    Each audit runs in an event loop of its own, like `parley audit verify`:
    a process that runs no other thread forks its workers at once.
    """
    root = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    database_url = f"sqlite+aiosqlite:///{root / 'parley.db'}"
    env = server_env(
        root / "server",
        database_url,
        PARLEY_RATE_LIMIT_PER_SECOND="1000000",
        PARLEY_RATE_LIMIT_BURST="1000000",
    )
    with running_server(env, root / "server.log") as server:
        settings = Settings(data_dir=root / "server", database_url=database_url)
        room_id = asyncio.run(_room(settings, server.url, root, messages))
        results = []
        for _ in range(rounds):
            raw = raw_verify_rate()
            size, seconds, threads = asyncio.run(_audit(root / "audrey", room_id))
            results.append(
                {
                    "raw_per_s": round(raw),
                    "entries_per_s": round(size / seconds),
                    "threads_at_start": threads,
                }
            )
    return _summary("online, `parley serve` on SQLite on the same machine", size, results)


async def _room(settings: Settings, url: str, root: Path, messages: int) -> str:
    """Enroll Mona, Alice and auditor Audrey on the server at `url`; fill a room."""
    admin = create_app(settings)  # the operator's side: tokens and grants, same database
    async with admin.router.lifespan_context(admin):
        identity = admin.state.services.identity

        async def enroll(role: Role, name: str) -> ParleyClient:
            ticket = await identity.create_enrollment(role=role, name=name)
            return await ParleyClient.enroll(
                server=url, token=ticket.token, home=root / name, passphrase="bench", scrypt_n=2**10
            )

        mona, alice = await enroll(Role.MEDIATOR, "mona"), await enroll(Role.PARTY, "alice")
        auditor = await enroll(Role.AUDITOR, "audrey")
        room = await mona.create_room("Benchmark")
        await mona.add_member(room.room_id, alice.keystore.state.account_id, Side.A)
        await alice.send(room.room_id, "template")
        events = await alice.http.request("GET", f"/v1/rooms/{room.room_id}/events")
        await _fill(alice, room.room_id, events["events"][-1]["payload"], messages)
        async with admin.state.services.logs.database.write() as conn:
            await RoomRepository(conn).grant_auditor(
                room.room_id, auditor.keystore.state.account_id, by="bench", now=0
            )
        for client in (mona, alice, auditor):
            await client.aclose()
    return room.room_id


async def _audit(home: Path, room_id: str) -> tuple[int, float, int]:
    """One audit as `parley audit verify` runs it: entries, seconds, threads at the start."""
    threads = threading.active_count()
    async with ParleyClient.open(home, "bench") as auditor:
        # Forget the verified checkpoint, so that each run audits from scratch.
        auditor.keystore.update(
            lambda state: state.model_copy(
                update={"checkpoints": {k: v for k, v in state.checkpoints.items() if k != room_id}}
            )
        )
        started = time.perf_counter()
        report = await verify_log(auditor, room_id)
        return report.size, time.perf_counter() - started, threads


async def _fill(sender: ParleyClient, room_id: str, template: dict[str, Any], count: int) -> None:
    """Post `count` copies of an envelope under fresh message ids, each signed again."""
    key = sender.keystore.state.device_key
    header = Header.model_validate(template["header"])
    semaphore = asyncio.Semaphore(8)

    async def post() -> None:
        fresh = header.model_copy(update={"message_id": b64e(secrets.token_bytes(16))})
        signature = key.sign(SigLabel.ENVELOPE, signed_bytes(fresh, template["wraps"]))
        body = {**template, "header": fresh.model_dump(mode="json"), "signature": b64e(signature)}
        async with semaphore:
            await sender.http.request("POST", f"/v1/rooms/{room_id}/messages", json=body)

    await asyncio.gather(*(post() for _ in range(count)))


def _summary(
    what: str, entries: int, results: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    ratios = [r["entries_per_s"] / r["raw_per_s"] for r in results]
    return {
        "what": what,
        "entries": entries,
        "cores": os.cpu_count(),
        "rounds": results,
        "median_ratio": round(statistics.median(ratios), 2),
        **extra,
    }


def main() -> None:
    """Run the benchmarks and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="offline log size")
    parser.add_argument("--online", type=int, default=0, help="online log size (0: skip)")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    print(json.dumps(offline(options.messages, options.rounds)))
    if options.online:
        print(json.dumps(online(options.online, options.rounds)))


if __name__ == "__main__":
    main()
