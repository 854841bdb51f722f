"""Every benchmark in one command: one JSON file of all figures and a short table.

    .venv/bin/python -m bench [--database-url URL] [--quick] [--only NAME ...]
                              [--output bench-results.json]

Runs each benchmark module as its own process (`python -m bench.NAME ...`),
one after another so they do not compete for the machine: the message
benchmark in both shapes on SQLite, and on PostgreSQL too when
``--database-url`` (a PostgreSQL server URL; each benchmark makes and drops
its own database) is given; fan-out; the command line; the log and audit;
disclosure; instruments. A module not present in this checkout is reported
as skipped. ``--quick`` runs each with small sizes, to check the harness, not
to measure. Each benchmark's JSON line is kept whole under its name in the
output file, beside the machine's description and the date; the table shows
the figures that carry each issue's targets. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True, slots=True)
class Run:
    """One benchmark process: its module, arguments, and the figures the table shows."""

    name: str
    module: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    """Extra arguments under ``--quick``."""
    headline: tuple[str, ...]
    postgres: bool = False
    """Whether it runs against ``--database-url`` (and only when one is given)."""


_MESSAGES = (
    "parley_sends_per_second",
    "ratio_vs_trivial",
    "delivery_p99_ms",
    "server_cpu_ms_per_message",
    "exactly_once",
)
_QUICK_MESSAGES = ("--messages", "64", "--warmup", "1")
RUNS: tuple[Run, ...] = (
    Run("messages-peer-sqlite", "bench.messages", ("--shape", "peer"), _QUICK_MESSAGES, _MESSAGES),
    Run(
        "messages-delegation-sqlite",
        "bench.messages",
        ("--shape", "delegation"),
        _QUICK_MESSAGES,
        _MESSAGES,
    ),
    Run(
        "messages-peer-postgresql",
        "bench.messages",
        ("--shape", "peer"),
        _QUICK_MESSAGES,
        _MESSAGES,
        postgres=True,
    ),
    Run(
        "messages-delegation-postgresql",
        "bench.messages",
        ("--shape", "delegation"),
        _QUICK_MESSAGES,
        _MESSAGES,
        postgres=True,
    ),
    Run(
        "fanout",
        "bench.fanout",
        (),
        ("--rooms", "4", "--rate", "20", "--seconds", "2"),
        ("delivery_p99_ms", "server_kib_per_idle_connection", "exactly_once"),
    ),
    Run(
        "cli",
        "bench.cli",
        (),
        ("--runs", "3"),
        ("help_ratio", "command_help_ratio", "send_ratio", "read_ratio"),
    ),
    Run(
        "log",
        "bench.log",
        (),
        ("--appends", "100", "--leaves", "5000", "--samples", "20", "--audit-entries", "2000"),
        (
            "appends_per_second",
            "inclusion_proof_ms_mean",
            "audit_entries",
            "audit_bundle_mb",
            "audit_ratio_to_raw",
        ),
    ),
    Run(
        "audit",
        "bench.audit",
        (),
        ("--entries", "3000", "--small", "600", "--online", "300"),
        (
            "offline_tiled_ratio_to_raw",
            "online_ratio_to_raw",
            "offline_tiled_to_raw",
            "offline_tiled_peak_rss_mib",
            "offline_small_tiled_peak_rss_mib",
        ),
    ),
    Run(
        "disclosure",
        "bench.disclosure",
        (),
        ("--repeat", "1"),
        ("commit_500x6_ms", "verify_50x2_ms", "excerpt_10_verify_ms"),
    ),
    Run(
        "instruments",
        "bench.instruments",
        (),
        ("--document-mb", "2", "--rounds", "1"),
        (
            "upload_mb_per_s",
            "download_mb_per_s",
            "server_rss_peak_growth_upload_mib",
            "rss_growth_within_target",
            "offer_round_ms_median",
        ),
    ),
)


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_start": round(load[0], 2),
    }


def _run(run: Run, *, database_url: str | None, quick: bool, err: Console) -> dict[str, Any]:
    """Run one benchmark process; its JSON line, or why there is none."""
    if importlib.util.find_spec(run.module) is None:
        return {"skipped": f"{run.module} is not in this checkout"}
    args = [sys.executable, "-m", run.module, *run.args, *(run.quick if quick else ())]
    if run.postgres:
        assert database_url is not None
        args += ["--database-url", database_url]
    err.print(f"[bold]{run.name}[/]: {' '.join(args[1:])}", highlight=False)
    began = time.monotonic()
    done = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=False)
    elapsed = round(time.monotonic() - began, 1)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return {"failed": f"exit status {done.returncode}", "elapsed_s": elapsed}
    try:
        figures: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"failed": "its last line is not JSON", "elapsed_s": elapsed}
    return {**figures, "elapsed_s": elapsed}


def _headline(run: Run, figures: dict[str, Any]) -> str:
    if "skipped" in figures or "failed" in figures:
        return str(figures.get("skipped") or figures.get("failed"))
    keys = run.headline or tuple(
        k for k, v in figures.items() if isinstance(v, int | float) and k != "elapsed_s"
    )
    return ", ".join(f"{k}={figures[k]}" for k in keys[:6] if k in figures)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the benchmarks, write the file, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL for the PostgreSQL runs")
    parser.add_argument("--quick", action="store_true", help="small sizes: check, not measure")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these benchmarks")
    parser.add_argument("--output", type=Path, default=Path("bench-results.json"))
    options = parser.parse_args(argv)
    known = {run.name for run in RUNS}
    unknown = set(options.only or ()) - known
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; known: {sorted(known)}")
    err = Console(stderr=True)
    results: dict[str, Any] = {"machine": _machine(), "quick": options.quick, "runs": {}}
    table = Table("benchmark", "figures", "s")
    for run in RUNS:
        if options.only and run.name not in options.only:
            continue
        if run.postgres and not options.database_url:
            figures: dict[str, Any] = {"skipped": "no --database-url"}
        else:
            figures = _run(run, database_url=options.database_url, quick=options.quick, err=err)
        results["runs"][run.name] = figures
        table.add_row(run.name, _headline(run, figures), str(figures.get("elapsed_s", "")))
    options.output.write_text(json.dumps(results, indent=2) + "\n")
    Console().print(table)
    err.print(f"wrote {options.output}", highlight=False)


if __name__ == "__main__":
    main()
