"""How fast the `parley` command answers, against minimal Python processes (issue 11).

    .venv/bin/python -m bench.cli [--runs 10] [--events 36]

Starts `parley serve` on SQLite in a temporary directory, enrolls a mediator and
two parties (``parley admin enroll`` for the tokens, the SDK for the keys, with
the keystore's default scrypt cost), opens a room and fills it with ``--events``
events through the SDK, then reads it once with `parley read` in each party's
profile (a profile in use holds its roster chain and checkpoints). Then, one
run of each in turn, ``--runs`` times, each a fresh process timed wall clock:

- ``import_httpx``: ``python -c "import httpx"``;
- ``healthz``: ``python -c "import httpx; httpx.get(URL + '/healthz')"``;
- ``help``: ``parley --help``; ``command_help``: ``parley send --help``;
- ``send``: ``parley send ROOM TEXT`` (Alice); ``read``: ``parley read ROOM`` (Bob).

The SDK's bytecode is compiled first (``compileall``), as ``pip install`` does for an
installed ``parley``: where ``PYTHONDONTWRITEBYTECODE`` is set (as on the test
machine) an editable checkout would otherwise compile every SDK module from source
in every timed run, while ``httpx`` in the baselines loads its installed bytecode.

Targets: ``help`` and ``command_help`` at most 1.5 times ``import_httpx``;
``send`` and ``read`` at most 2 times ``healthz``. One JSON line goes to stdout
(``help_ratio``, ``command_help_ratio``, ``send_ratio``, ``read_ratio``, whether
each target is met, the medians in milliseconds and the load average); progress
to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, clean_env, log, parley_argv, start_parley
from bench.messages import PASSPHRASE, admin_enroll
from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Side

HELP_TARGET = 1.5
COMMAND_TARGET = 2.0


@dataclass(frozen=True, slots=True)
class Case:
    """One command line to time, and the environment it runs in."""

    name: str
    argv: list[str]
    env: dict[str, str]


def timed(case: Case) -> float:
    """Seconds `case` takes from spawn to exit; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(
        case.argv, env=case.env, cwd=REPO_ROOT, capture_output=True, timeout=120, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{case.name} failed: {done.stderr.decode(errors='replace')}")
    return elapsed


async def prepare(workdir: Path, url: str, env: dict[str, str], events: int) -> dict[str, Any]:
    """Three enrolled profiles and a room of `events` events; what the cases need."""
    people = [("mediator", "Mona Mediator"), ("party", "Alice"), ("party", "Bob")]
    tokens = [await admin_enroll(env, role, name) for role, name in people]
    homes = [workdir / name for name in ("mona", "alice", "bob")]
    clients = [
        await ParleyClient.enroll(server=url, token=token, home=home, passphrase=PASSPHRASE)
        for token, home in zip(tokens, homes, strict=True)
    ]
    mediator, alice, bob = clients
    try:
        room = (await mediator.create_room("Bench room")).room_id
        await mediator.add_member(room, alice.whoami()["account_id"], Side.A)
        await mediator.add_member(room, bob.whoami()["account_id"], Side.B)
        for i in range(max(0, events - 3)):
            sender = (mediator, alice, bob)[i % 3]
            await sender.send(room, f"bench message {i}")
    finally:
        for client in clients:
            await client.aclose()
    return {"room": room, "alice": homes[1], "bob": homes[2]}


def cases(url: str, setup: dict[str, Any]) -> list[Case]:
    """Every case, in the order each round runs them."""
    plain = clean_env()

    def profile(home: Path) -> dict[str, str]:
        return clean_env(PARLEY_HOME=str(home), PARLEY_PASSPHRASE=PASSPHRASE, NO_COLOR="1")

    python = sys.executable
    room = setup["room"]
    return [
        Case("import_httpx", [python, "-c", "import httpx"], plain),
        Case("healthz", [python, "-c", f"import httpx; httpx.get({url!r} + '/healthz')"], plain),
        Case("help", parley_argv("--help"), plain),
        Case("command_help", parley_argv("send", "--help"), plain),
        Case("send", parley_argv("send", room, "from the bench"), profile(setup["alice"])),
        Case("read", parley_argv("read", room), profile(setup["bob"])),
    ]


async def run(runs: int, events: int) -> dict[str, Any]:
    """Measure; return the JSON line's content."""
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-cli-"))
    server = None
    try:
        server, env = await start_parley(workdir)
        compileall.compile_dir(REPO_ROOT / "client_sdk", quiet=1)
        log(f"enrolling three profiles and filling a room with {events} events")
        setup = await prepare(workdir, server.url, env, events)
        all_cases = cases(server.url, setup)
        for case in all_cases:  # warm-up: caches, and each profile's first read
            timed(case)
        samples: dict[str, list[float]] = {case.name: [] for case in all_cases}
        for round_number in range(runs):
            log(f"round {round_number + 1} of {runs}")
            for case in all_cases:
                samples[case.name].append(timed(case))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    ratios = {
        "help": medians["help"] / medians["import_httpx"],
        "command_help": medians["command_help"] / medians["import_httpx"],
        "send": medians["send"] / medians["healthz"],
        "read": medians["read"] / medians["healthz"],
    }
    targets = {"help": HELP_TARGET, "command_help": HELP_TARGET}
    targets |= {"send": COMMAND_TARGET, "read": COMMAND_TARGET}
    met = {f"{name}_met": ratios[name] <= targets[name] for name in ratios}
    return {
        **{f"{name}_ratio": round(value, 2) for name, value in ratios.items()},
        **met,
        "median_ms": {name: round(value, 1) for name, value in medians.items()},
        "targets": targets,
        "runs": runs,
        "room_events": events,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, measure, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="Runs of each case (median).")
    parser.add_argument("--events", type=int, default=36, help="Events in the room read.")
    options = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(options.runs, options.events))), flush=True)


if __name__ == "__main__":
    main()
