"""Benchmark the verifiable log: appends, proofs at a million leaves, proof sizes,
and `parley audit verify` against this machine's raw Ed25519 verification rate.

    .venv/bin/python -m bench.log [--database-url URL] [--appends N] [--leaves N]
                                  [--audit-entries N]

SQLite in a temporary directory by default; with ``--database-url`` (a
PostgreSQL server URL) a fresh database is created for the run and dropped
after. Prints one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from bench.common import log
from client_sdk.audit import read_bundle, verify_bundle
from client_sdk.audit.pool import worker_count
from client_sdk.protocol import merkle
from client_sdk.protocol.keys import SigLabel, SigningKey, verify_signature
from client_sdk.protocol.note import Checkpoint
from server.log.appender import LogWriter
from server.log.proofs import ProofReader
from server.log.signer import CheckpointSigner
from server.storage.database import Database, create_database
from server.storage.logs import CheckpointRow, LogRepository
from server.storage.migrate import upgrade_to_head
from server.storage.tables import logs as logs_table
from tests.audit import synthetic
from tests.support.databases import create_database as create_pg_database
from tests.support.databases import drop_database, with_database


def raw_ed25519_rate(seconds: float = 2.0) -> float:
    """Single-core Ed25519 verifications per second, as `audit verify` does them."""
    key = SigningKey.generate()
    data = bytes(300)
    signature = key.sign(SigLabel.ENVELOPE, data)
    public = key.public_bytes()
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            verify_signature(public, SigLabel.ENVELOPE, data, signature)
        count += 200
    return count / (time.perf_counter() - start)


async def measure_appends(database: Database, writer: LogWriter, appends: int) -> dict[str, Any]:
    """Sequential appends, each in its own committed transaction (as services do)."""
    async with database.write() as conn:
        await writer.create(conn, log_id="bench-appends", origin="bench/appends", now=0)
    signature = bytes(64)
    latencies = []
    start = time.perf_counter()
    for i in range(appends):
        began = time.perf_counter()
        async with database.write() as conn:
            await writer.append(
                conn,
                "bench-appends",
                type="message",
                actor_device="bench",
                payload_hash=merkle.leaf_hash(i.to_bytes(8, "big")),
                signature=signature,
                server_time=i,
            )
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    return {
        "appends": appends,
        "appends_per_second": round(appends / elapsed, 1),
        "append_latency_ms_p50": round(statistics.median(latencies) * 1000, 3),
        "append_latency_ms_p99": round(sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000, 3),
    }


async def build_large_tree(
    database: Database, signer: CheckpointSigner, leaves: int
) -> tuple[str, bytes]:
    """A log of `leaves` synthetic leaves: every subtree hash stored, one checkpoint."""
    log_id = "bench-large"
    frontier = merkle.CompactRange()
    batch: list[dict[str, Any]] = []
    started = time.perf_counter()
    async with database.write() as conn:
        repo = LogRepository(conn)
        await repo.create(log_id=log_id, origin="bench/large", now=0)
    for i in range(leaves):
        frontier, nodes = frontier.append(merkle.leaf_hash(i.to_bytes(8, "big")))
        batch.extend(
            {"log_id": log_id, "level": n.level, "idx": n.index, "hash": n.hash} for n in nodes
        )
        if len(batch) >= 50_000 or i == leaves - 1:
            async with database.write() as conn:
                from server.storage.tables import log_nodes

                await conn.execute(log_nodes.insert(), batch)
            batch = []
            if i % 200_000 == 0:
                log(f"built {i:,} of {leaves:,} leaves")
    root = frontier.root()
    async with database.write() as conn:
        await conn.execute(update(logs_table).where(logs_table.c.id == log_id).values(size=leaves))
        note = signer.sign(Checkpoint("bench/large", leaves, root))
        await LogRepository(conn).add_checkpoint(
            CheckpointRow(log_id=log_id, size=leaves, root=root, note=note, created_at=0)
        )
    log(f"tree of {leaves:,} leaves built in {time.perf_counter() - started:.1f} s")
    return log_id, root


async def measure_proofs(
    database: Database, log_id: str, size: int, root: bytes, samples: int
) -> dict[str, Any]:
    """Inclusion and consistency proof generation from stored hashes, each verified."""
    rng = random.Random(7)
    inclusion_times, consistency_times = [], []
    inclusion_sizes, consistency_sizes = [], []
    for _ in range(samples):
        index = rng.randrange(size)
        async with database.read() as conn:
            began = time.perf_counter()
            proof = await ProofReader(conn, log_id).inclusion(index, size)
            inclusion_times.append(time.perf_counter() - began)
        merkle.verify_inclusion(
            merkle.leaf_hash(index.to_bytes(8, "big")), index, size, proof, root
        )
        inclusion_sizes.append(len(proof))
        size1 = rng.randrange(1, size)
        async with database.read() as conn:
            reader = ProofReader(conn, log_id)
            began = time.perf_counter()
            cproof = await reader.consistency(size1, size)
            consistency_times.append(time.perf_counter() - began)
            root1 = await reader.root(size1)
        merkle.verify_consistency(size1, size, cproof, root1, root)
        consistency_sizes.append(len(cproof))
    return {
        "proof_tree_size": size,
        "inclusion_proof_ms_mean": round(statistics.mean(inclusion_times) * 1000, 3),
        "inclusion_proof_ms_p99": round(sorted(inclusion_times)[-max(1, samples // 100)] * 1000, 3),
        "consistency_proof_ms_mean": round(statistics.mean(consistency_times) * 1000, 3),
        "consistency_proof_ms_p99": round(
            sorted(consistency_times)[-max(1, samples // 100)] * 1000, 3
        ),
        "inclusion_proof_hashes_max": max(inclusion_sizes),
        "inclusion_proof_bytes_max": max(inclusion_sizes) * 32,
        "consistency_proof_hashes_max": max(consistency_sizes),
        "consistency_proof_bytes_max": max(consistency_sizes) * 32,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, in one process, on one fresh database."""
    with tempfile.TemporaryDirectory(prefix="parley-bench-log-") as tmp:
        dropper = None
        if args.database_url:
            admin = args.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
            name = await create_pg_database(admin)
            url = with_database(admin, name, driver="postgresql+asyncpg")
            dropper = (admin, name)
            backend = "postgresql"
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            backend = "sqlite"
        database = create_database(url)
        try:
            await upgrade_to_head(database)
            signer = CheckpointSigner(Ed25519PrivateKey.generate())
            writer = LogWriter(signer)
            log(f"{args.appends} appends on {backend}")
            figures: dict[str, Any] = {"benchmark": "log", "backend": backend}
            figures.update(await measure_appends(database, writer, args.appends))
            log_id, root = await build_large_tree(database, signer, args.leaves)
            figures.update(await measure_proofs(database, log_id, args.leaves, root, args.samples))
        finally:
            await database.dispose()
            if dropper is not None:
                await drop_database(*dropper)
    rate = raw_ed25519_rate()
    figures["raw_ed25519_verifies_per_second"] = round(rate, 1)
    if args.audit_entries:
        figures.update(measure_audit(args.audit_entries))
    return figures


def measure_audit(entries: int) -> dict[str, Any]:
    """`audit verify` (offline tiled bundle, process pool) on a signed room log of
    `entries`, against the raw Ed25519 rate of as many processes as the audit's workers
    (and of one core, as before), measured just before in the same run."""
    from bench.audit import raw_rate  # imports this module

    log(f"building a signed room log of {entries:,} entries")
    with tempfile.TemporaryDirectory(prefix="parley-bench-log-") as tmp:
        path = Path(tmp) / "room.parley-bundle"
        synthetic.room(messages=entries, fresh_wraps=True).write_tiled(path)
        raw = raw_ed25519_rate()
        processes = worker_count(None)
        raw_same = raw_rate(processes)
        log("auditing it")
        started = time.perf_counter()
        report = verify_bundle(read_bundle(path))
        elapsed = time.perf_counter() - started
        size = path.stat().st_size
    rate = report.size / elapsed
    return {
        "audit_entries": report.size,
        "audit_bundle_mb": round(size / 1e6, 1),
        "audit_seconds": round(elapsed, 2),
        "audit_entries_per_second": round(rate, 1),
        "audit_raw_ed25519_per_second": round(raw, 1),
        "audit_ratio_to_raw_single_core": round(rate / raw, 3),
        "audit_processes": processes,
        "audit_raw_ed25519_per_second_same_processes": round(raw_same, 1),
        "audit_ratio_to_raw": round(rate / raw_same, 3),
        "audit_target_ratio": 0.7,
    }


def main() -> None:
    """Parse arguments, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL (a fresh database is made)")
    parser.add_argument("--appends", type=int, default=2000, help="appends to time")
    parser.add_argument("--leaves", type=int, default=1_000_000, help="leaves of the proof tree")
    parser.add_argument("--samples", type=int, default=300, help="proofs of each kind to time")
    parser.add_argument(
        "--audit-entries", type=int, default=100_000, help="size of the audited log (0: skip)"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
