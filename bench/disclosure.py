"""Dossier and excerpt costs against a real `parley serve` process.

    .venv/bin/python -m bench.disclosure [--repeat 3]

Starts `parley serve` on SQLite in a temporary data directory, enrolls a
mediator and two parties (``parley admin enroll`` for the tokens, the SDK for
the keys) and opens a room. Then, each figure the median of ``--repeat``
runs, after one warm-up:

- commit: `Dossiers.commit` of 500 records of 6 fields (issue the SD-JWT,
  seal and send it, check the receipt, store the issuance), with and without
  100 decoys; the size of the commit event as the server stores it;
- disclose: 50 records of 2 fields on plenary; the presentation's and the
  event's size;
- verify: `verify_presentation` of that disclosure against the committed JWT
  (the pure check), and the recipient's whole check of the received event
  (`check_disclosure`: the issuer's directory entry, then the presentation);
- excerpt: `ParleyClient.excerpt` of 10 messages (fetch, unwrap, prove,
  check), its file size, and `verify_excerpt` of the file as an outsider.

Targets: commit of 500 records under 1 s, verification of 50 records under
100 ms. One JSON line goes to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bench.common import (
    ServiceProcess,
    log,
    start_parley,
)
from bench.messages import PASSPHRASE, SCRYPT_N, admin_enroll
from client_sdk.client import ParleyClient
from client_sdk.client.dossier_checks import check_disclosure, seen_commit
from client_sdk.protocol.excerpt import parse_excerpt, verify_excerpt
from client_sdk.protocol.models import Side
from client_sdk.protocol.sdjwt import verify_presentation

T = TypeVar("T")
TARGET_COMMIT_MS = 1000.0
TARGET_VERIFY_MS = 100.0


def records(count: int) -> list[dict[str, Any]]:
    """`count` detainee records of six fields."""
    return [
        {
            "name": f"Detainee {n}",
            "rank": "sergeant",
            "service_number": f"A{n:06d}",
            "date_of_capture": "2026-03-14",
            "place_of_capture": "River crossing",
            "health_status": "stable",
        }
        for n in range(1, count + 1)
    ]


async def timed(work: Callable[[], Awaitable[T]], repeat: int) -> tuple[float, T]:
    """The median wall time of `repeat` runs (ms), and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await work()
        times.append((time.perf_counter() - started) * 1000)
    assert result is not None
    return round(statistics.median(times), 2), result


async def event_size(client: ParleyClient, room_id: str, seq: int) -> int:
    """Bytes of the stored event's payload (the envelope), as JSON."""
    page = await client.http.request(
        "GET", f"/v1/rooms/{room_id}/events", params={"after": seq - 1, "limit": 1}
    )
    return len(json.dumps(page["events"][0]["payload"], separators=(",", ":")))


async def measure(server: ServiceProcess, env: dict[str, str], home: Path, repeat: int) -> Any:
    """Every figure of the report."""
    people = [("mediator", "Bench Mediator"), ("party", "Side A"), ("party", "Side B")]
    tokens = [await admin_enroll(env, role, name) for role, name in people]
    mediator, alice, bob = [
        await ParleyClient.enroll(
            server=server.url,
            token=token,
            home=home / f"profile-{i}",
            passphrase=PASSPHRASE,
            scrypt_n=SCRYPT_N,
        )
        for i, token in enumerate(tokens)
    ]
    try:
        room = (await mediator.create_room("Bench exchange")).room_id
        await mediator.add_member(room, alice.whoami()["account_id"], Side.A)
        await mediator.add_member(room, bob.whoami()["account_id"], Side.B)
        roster = records(500)
        await alice.dossiers.commit(room, records(5), title="Warm-up")
        log("committing 500 records")
        commit_ms, commit = await timed(
            lambda: alice.dossiers.commit(room, roster, title="Roster A"), repeat
        )
        decoy_ms, decoyed = await timed(
            lambda: alice.dossiers.commit(room, roster, title="Roster A", decoys=100), repeat
        )
        log("disclosing 50 records of 2 fields")
        disclose_ms, sent = await timed(
            lambda: alice.dossiers.disclose(
                room,
                commit.dossier_id,
                records="1-50",
                fields="name,service_number",
                channel="plenary",
            ),
            repeat,
        )
        messages = {m.seq: m async for m in bob.messages(room)}
        committed = seen_commit(messages[commit.seq])
        assert committed is not None
        issuer_key = (
            (await bob.account(alice.whoami()["account_id"]))
            .devices[committed.sender_device]
            .signing_key
        )

        async def pure() -> object:
            return verify_presentation(
                sent.presentation,
                issuer_key=issuer_key,
                room_id=room,
                committed_jwt=committed.jwt,
                issuer=committed.sender_account_id,
            )

        verify_ms, _ = await timed(pure, max(repeat, 20))
        check_ms, checked = await timed(
            lambda: check_disclosure(messages[sent.seq], committed, bob.account), max(repeat, 20)
        )
        assert checked.verified
        assert len(checked.records) == 50
        log("an excerpt of 10 messages")
        seqs = [(await alice.send(room, f"Statement {i}")).seq for i in range(10)]
        excerpt_ms, excerpt = await timed(lambda: alice.excerpt(room, seqs), repeat)
        data = excerpt.to_json()

        async def outsider() -> object:
            return verify_excerpt(parse_excerpt(data), excerpt.room_log.log_key)

        excerpt_verify_ms, _ = await timed(outsider, repeat)
        return {
            "benchmark": "disclosure",
            "backend": "sqlite",
            "repeat": repeat,
            "commit_500x6_ms": commit_ms,
            "commit_500x6_event_bytes": await event_size(alice, room, commit.seq),
            "commit_500x6_decoys100_ms": decoy_ms,
            "commit_500x6_decoys100_event_bytes": await event_size(alice, room, decoyed.seq),
            "disclose_50x2_ms": disclose_ms,
            "disclose_50x2_presentation_bytes": len(sent.presentation),
            "disclose_50x2_event_bytes": await event_size(alice, room, sent.seq),
            "verify_50x2_ms": verify_ms,
            "receive_check_50x2_ms": check_ms,
            "excerpt_10_ms": excerpt_ms,
            "excerpt_10_bytes": len(data),
            "excerpt_10_verify_ms": excerpt_verify_ms,
            "target_commit_ms": TARGET_COMMIT_MS,
            "target_verify_ms": TARGET_VERIFY_MS,
            "commit_within_target": commit_ms < TARGET_COMMIT_MS,
            "verify_within_target": verify_ms < TARGET_VERIFY_MS,
        }
    finally:
        for client in (mediator, alice, bob):
            await client.aclose()


async def run(repeat: int) -> dict[str, Any]:
    """Start a server in a temporary directory, measure, stop it, remove the directory."""
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-disclosure-"))
    try:
        server, env = await start_parley(workdir)
        try:
            result: dict[str, Any] = await measure(server, env, workdir / "profiles", repeat)
            return result
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the figures as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="Runs per figure (median).")
    options = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(options.repeat))), flush=True)


if __name__ == "__main__":
    main()
