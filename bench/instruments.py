"""Negotiation instruments against a real `parley serve` process (docs/design.md §7).

    .venv/bin/python -m bench.instruments [--document-mb 50] [--rounds 5]

Starts `parley serve` on SQLite in a temporary data directory, enrolls a
mediator and two parties (``parley admin enroll`` for the tokens, the SDK for
the keys) and opens a room. Then each measurement is a function of its own,
given the same `Talks`:

- `measure_documents`: side A sends a document of ``--document-mb`` MiB
  (random bytes: sealed in 1 MiB chunks, uploaded, completed, sent as a
  message) and side B downloads it (every chunk checked, written
  atomically); MB/s of each (10^6 bytes of plaintext per second, end to
  end), and the server's peak resident memory growth during the upload,
  sampled from ``/proc/PID/status`` every 10 ms against its resident size
  just before. Target: under 16 MiB of growth for 50 MiB.

- `measure_offer_round`: a full sealed-offer round, ``--rounds`` times: the
  mediator opens it, both sides commit (each escrowed to the mediator's
  device), both reveal, and side A shows it (reading the room and checking
  both openings against their commitments); the median and the slowest
  wall-clock time of the whole round, and of each step.

One JSON line goes to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ServiceProcess, log, start_parley
from bench.messages import PASSPHRASE, SCRYPT_N, admin_enroll
from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Side

MIB = 1 << 20
TARGET_RSS_GROWTH_MIB = 16.0
SAMPLE_SECONDS = 0.01


@dataclass(frozen=True, slots=True)
class Talks:
    """A running server and a room: the mediator, side A and side B."""

    server: ServiceProcess
    room_id: str
    mediator: ParleyClient
    alice: ParleyClient
    bob: ParleyClient
    workdir: Path


def rss_kib(pid: int) -> int:
    """The process's resident set size (KiB), from ``/proc/PID/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextmanager
def peak_rss(pid: int) -> Iterator[list[int]]:
    """Sample the process's RSS on a thread while the block runs; the list holds the
    peak (KiB) once the block is done."""
    peak = [rss_kib(pid)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            stop.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


def random_file(path: Path, size: int) -> Path:
    """A file of `size` random bytes, written 1 MiB at a time."""
    with path.open("wb") as file:
        left = size
        while left:
            piece = min(left, MIB)
            file.write(os.urandom(piece))
            left -= piece
    return path


async def measure_documents(talks: Talks, size_mib: int) -> dict[str, Any]:
    """Upload and download of one document, and the server's memory during the upload."""
    size = size_mib * MIB
    warm = random_file(talks.workdir / "warm-up.bin", 3 * MIB)
    sent = await talks.alice.documents.send_file(talks.room_id, warm, channel="plenary")
    await talks.bob.documents.download(talks.room_id, sent.receipt.seq, talks.workdir / "warm.out")
    source = random_file(talks.workdir / "document.bin", size)
    log(f"uploading {size_mib} MiB")
    before = rss_kib(talks.server.pid)
    started = time.perf_counter()
    with peak_rss(talks.server.pid) as peak:
        sent = await talks.alice.documents.send_file(talks.room_id, source, channel="plenary")
    upload_seconds = time.perf_counter() - started
    log(f"downloading {size_mib} MiB")
    target = talks.workdir / "document.out"
    started = time.perf_counter()
    await talks.bob.documents.download(talks.room_id, sent.receipt.seq, target)
    download_seconds = time.perf_counter() - started
    if target.stat().st_size != size:
        raise RuntimeError("the downloaded document has the wrong size")
    growth_mib = (peak[0] - before) / 1024
    return {
        "document_mib": size_mib,
        "document_chunk_bytes": sent.document.chunk_size,
        "upload_mb_per_s": round(size / 1e6 / upload_seconds, 1),
        "download_mb_per_s": round(size / 1e6 / download_seconds, 1),
        "upload_seconds": round(upload_seconds, 2),
        "download_seconds": round(download_seconds, 2),
        "server_rss_before_upload_mib": round(before / 1024, 1),
        "server_rss_peak_growth_upload_mib": round(growth_mib, 1),
        "target_rss_growth_mib": TARGET_RSS_GROWTH_MIB,
        "rss_growth_within_target": growth_mib < TARGET_RSS_GROWTH_MIB,
    }


async def measure_offer_round(talks: Talks, rounds: int) -> dict[str, Any]:
    """A full sealed-offer round (open, two commits, two reveals, show), `rounds` times in
    the same room; the median and slowest of the whole round and of each step (ms)."""
    room_id = talks.room_id
    steps: dict[str, list[float]] = {
        "open": [],
        "commit": [],
        "reveal": [],
        "show": [],
        "round": [],
    }
    for n in range(rounds):
        log(f"offer round {n + 1} of {rounds}")
        started = time.perf_counter()
        opened = await talks.mediator.offers.open_round(room_id, f"Bench question {n}")
        committed = time.perf_counter()
        await talks.alice.offers.commit(room_id, opened.round_id, str(100 + n), "bench")
        await talks.bob.offers.commit(room_id, opened.round_id, str(90 + n))
        revealing = time.perf_counter()
        await talks.alice.offers.reveal(room_id, opened.round_id)
        await talks.bob.offers.reveal(room_id, opened.round_id)
        showing = time.perf_counter()
        [shown] = await talks.alice.offers.rounds(room_id, opened.round_id)
        done = time.perf_counter()
        if [o.value for o in shown.offers] != [str(100 + n), str(90 + n)]:
            raise RuntimeError("the round does not show both offers")
        steps["open"].append(committed - started)
        steps["commit"].append((revealing - committed) / 2)
        steps["reveal"].append((showing - revealing) / 2)
        steps["show"].append(done - showing)
        steps["round"].append(done - started)
    result: dict[str, Any] = {"offer_rounds": rounds}
    for name, seconds in steps.items():
        ordered = sorted(seconds)
        result[f"offer_{name}_ms_median"] = round(ordered[len(ordered) // 2] * 1000, 1)
    result["offer_round_ms_max"] = round(max(steps["round"]) * 1000, 1)
    return result


async def open_talks(server: ServiceProcess, env: dict[str, str], workdir: Path) -> Talks:
    """Enroll a mediator and two parties and open a room with both sides in it."""
    people = [("mediator", "Bench Mediator"), ("party", "Side A"), ("party", "Side B")]
    tokens = [await admin_enroll(env, role, name) for role, name in people]
    mediator, alice, bob = [
        await ParleyClient.enroll(
            server=server.url,
            token=token,
            home=workdir / f"profile-{i}",
            passphrase=PASSPHRASE,
            scrypt_n=SCRYPT_N,
        )
        for i, token in enumerate(tokens)
    ]
    room = (await mediator.create_room("Bench instruments")).room_id
    await mediator.add_member(room, alice.whoami()["account_id"], Side.A)
    await mediator.add_member(room, bob.whoami()["account_id"], Side.B)
    return Talks(server, room, mediator, alice, bob, workdir)


async def run(document_mib: int, rounds: int) -> dict[str, Any]:
    """Start a server in a temporary directory, measure, stop it, remove the directory."""
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-instruments-"))
    try:
        server, env = await start_parley(
            workdir, PARLEY_MAX_DOCUMENT_BYTES=str(max(document_mib, 50) * MIB)
        )
        try:
            talks = await open_talks(server, env, workdir)
            try:
                result: dict[str, Any] = {"benchmark": "instruments", "backend": "sqlite"}
                result |= await measure_documents(talks, document_mib)
                result |= await measure_offer_round(talks, rounds)
                return result
            finally:
                for client in (talks.mediator, talks.alice, talks.bob):
                    await client.aclose()
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Print the figures as one JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--document-mb", type=int, default=50, help="Document size in MiB.")
    parser.add_argument("--rounds", type=int, default=5, help="Sealed-offer rounds to time.")
    options = parser.parse_args()
    print(json.dumps(asyncio.run(run(options.document_mb, options.rounds))), flush=True)


if __name__ == "__main__":
    main()
