"""Benchmark `parley audit verify` against the raw Ed25519 rate of as many processes.

    .venv/bin/python -m bench.audit [--entries 100000] [--small 10000] [--online 3000]
                                    [--before PATH]

Offline: a synthetic room log (`tests.audit.synthetic`, every message with wraps
of its own) written as a tiled bundle and as a JSON bundle. Each audit runs in
a process of its own (as `parley audit verify --bundle` does), timed from
reading the file to the report, with its peak RSS (VmHWM) and its workers'; the tiled
one for two log lengths, to show memory does not grow with the log. Online: a
room filled through a `parley serve` process on SQLite, audited over HTTP.

The raw rate is measured just before each audit with the same number of
processes as the audit's workers (each verifying 300-byte messages, as
`bench.log.raw_ed25519_rate`), so the ratio compares like with like on a
shared machine. With ``--before PATH`` (another checkout, e.g. ``main``), the
JSON bundle and the online audit also run with that checkout's code: the
"before" figures of the same run. Prints one JSON line; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, log
from bench.log import raw_ed25519_rate
from client_sdk.audit.archive import signed_bytes_of
from client_sdk.audit.pool import worker_count
from client_sdk.protocol.encoding import b64d

OFFLINE_CHILD = """
import json, resource, sys, time
from pathlib import Path
from client_sdk.audit import read_bundle, verify_bundle
started = time.perf_counter()
report = verify_bundle(read_bundle(Path(sys.argv[1])))
seconds = time.perf_counter() - started
# VmHWM: ru_maxrss would count the bench's own memory, carried over the exec.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({
    "size": report.size, "seconds": seconds, "rss_mib": int(hwm) / 1024,
    "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""
ONLINE_CHILD = """
import asyncio, json, sys
from pathlib import Path
from tests.audit.bench_audit import _audit
size, seconds, threads = asyncio.run(_audit(Path(sys.argv[1]), sys.argv[2]))
print(json.dumps({"size": size, "seconds": seconds}))
"""


def _raw_worker(seconds: float) -> float:
    return raw_ed25519_rate(seconds)


def raw_rate(processes: int, seconds: float = 2.0) -> float:
    """Ed25519 verifications per second of `processes` processes running at once."""
    if processes == 1:
        return raw_ed25519_rate(seconds)
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return sum(pool.map(_raw_worker, [seconds] * processes))


def _child(script: str, tree: Path, *args: str) -> dict[str, Any]:
    """Run `script` in a fresh process importing the code of `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"audit process failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _audited(name: str, script: str, tree: Path, *args: str) -> dict[str, Any]:
    processes = worker_count(None)
    raw = raw_rate(processes)
    log(f"{name}: raw Ed25519 {raw:,.0f}/s with {processes} processes; auditing")
    result = _child(script, tree, *args)
    rate = result["size"] / result["seconds"]
    figures = {
        f"{name}_entries": result["size"],
        f"{name}_seconds": round(result["seconds"], 2),
        f"{name}_entries_per_second": round(rate, 1),
        f"{name}_raw_ed25519_per_second": round(raw, 1),
        f"{name}_ratio_to_raw": round(rate / raw, 3),
    }
    if "rss_mib" in result:
        figures[f"{name}_peak_rss_mib"] = round(result["rss_mib"], 1)
        figures[f"{name}_worker_peak_rss_mib"] = round(result["worker_rss_mib"], 1)
    log(f"{name}: {figures}")
    return figures


def offline(entries: int, small: int, before: Path | None, tmp: Path) -> dict[str, Any]:
    """The tiled bundle at two lengths, and the JSON bundle (before, if asked)."""
    from tests.audit import synthetic

    figures: dict[str, Any] = {}
    for length, name in ((small, "offline_small"), (entries, "offline")):
        log(f"building a signed room log of {length:,} messages")
        room = synthetic.room(messages=length, fresh_wraps=True)
        tiled = tmp / f"{name}.parley-bundle"
        started = time.perf_counter()
        room.write_tiled(tiled)
        log(f"tiled bundle written in {time.perf_counter() - started:.1f} s")
        figures.update(_audited(f"{name}_tiled", OFFLINE_CHILD, REPO_ROOT, str(tiled)))
        if name != "offline":
            continue
        raw_bytes = sum(
            len(b64d(e["leaf"])) + len(signed_bytes_of(e["signed"])) for e in room.log.entries
        )
        json_path = tmp / "bundle.json"
        json_path.write_bytes(room.bundle().to_bytes())
        del room
        figures.update(
            {
                "offline_raw_entry_mb": round(raw_bytes / 1e6, 2),
                "offline_tiled_bundle_mb": round(tiled.stat().st_size / 1e6, 2),
                "offline_json_bundle_mb": round(json_path.stat().st_size / 1e6, 2),
                "offline_tiled_to_raw": round(tiled.stat().st_size / raw_bytes, 3),
            }
        )
        figures.update(_audited("offline_json", OFFLINE_CHILD, REPO_ROOT, str(json_path)))
        if before is not None:
            figures.update(_audited("before_offline_json", OFFLINE_CHILD, before, str(json_path)))
        json_path.unlink()
    return figures


def online(messages: int, before: Path | None, tmp: Path) -> dict[str, Any]:
    """A room filled through a real server, audited by its auditor over HTTP."""
    from server.config import Settings
    from tests.audit.bench_audit import _room
    from tests.support.server import running_server, server_env

    database_url = f"sqlite+aiosqlite:///{tmp / 'parley.db'}"
    env = server_env(
        tmp / "server",
        database_url,
        PARLEY_RATE_LIMIT_PER_SECOND="1000000",
        PARLEY_RATE_LIMIT_BURST="1000000",
    )
    figures: dict[str, Any] = {}
    with running_server(env, tmp / "server.log") as server:
        settings = Settings(data_dir=tmp / "server", database_url=database_url)
        log(f"filling a room with {messages:,} messages through the server")
        room_id = asyncio.run(_room(settings, server.url, tmp, messages))
        args = (str(tmp / "audrey"), room_id)
        figures.update(_audited("online", ONLINE_CHILD, REPO_ROOT, *args))
        if before is not None:
            figures.update(_audited("before_online", ONLINE_CHILD, before, *args))
    return figures


def main() -> None:
    """Parse arguments, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="offline log length")
    parser.add_argument("--small", type=int, default=10_000, help="the shorter offline log")
    parser.add_argument("--online", type=int, default=3000, help="online log length (0: skip)")
    parser.add_argument("--before", type=Path, help="a checkout whose code gives 'before'")
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "benchmark": "audit",
        "processes": worker_count(None),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "target_ratio": 0.7,
    }
    with tempfile.TemporaryDirectory(prefix="parley-bench-audit-") as name:
        tmp = Path(name)
        figures.update(offline(args.entries, args.small, args.before, tmp))
        if args.online:
            (tmp / "online").mkdir()
            figures.update(online(args.online, args.before, tmp / "online"))
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
