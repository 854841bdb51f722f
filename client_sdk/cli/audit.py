"""``parley audit ...``: verify a log (online or from a bundle), export it, run a witness.

Exit codes: 0 verified (or cosigned), 1 a verification failed or the witness
refused (the reason, with the first failing index, on stderr), 2 a usage or
connection error.
"""

from __future__ import annotations

import asyncio
import enum
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from typer._click.core import Context  # typer vendors click: its Context type
from typer.core import TyperGroup

from client_sdk.cli.common import err, fail, open_client, out, print_json, run
from client_sdk.cli.render import inline
from client_sdk.protocol.errors import (
    NotFoundError,
    ParleyError,
    ProtocolError,
    VerificationError,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from client_sdk.audit import AuditReport, WitnessedCheckpoint
    from client_sdk.client import ParleyClient

# The audit machinery, the client and rich's progress bar are imported in the
# commands that use them, so `parley audit --help` stays cheap (`client_sdk.cli.lazy`).

T = TypeVar("T")

audit_app = typer.Typer(
    help="Verify logs, export offline bundles, and cosign checkpoints as a witness.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LogArgument = Annotated[str, typer.Argument(help="The log: a room id, or `directory`.")]
UNPINNED_WARNING = (
    "warning: no --log-key given, so the bundle is checked against the log key it carries "
    "itself, which whoever wrote the bundle chose; give --log-key with the key you trust "
    "(`parley audit verify LOG --json` shows it as log_vkey)"
)
PROGRESS_MIN_ENTRIES = 1000
"""Logs at least this long get a progress bar on stderr."""


def _run(work: Callable[[], Coroutine[object, object, T]], *, json_output: bool = False) -> T:
    """Run `work`; a failed check or a witness's refusal exits 1, a usage, file or
    connection error 2 (`common.describe`; a failed audit names its first failing
    index, and under `json_output` carries ``index`` and ``last``)."""
    return run(work, json_output=json_output)


def _client() -> ParleyClient:
    return open_client()


@asynccontextmanager
async def _entries_of(client: ParleyClient, log_id: str) -> AsyncIterator[None]:
    """Where the server hides a log's entries from a witness the room's policy names,
    say so instead of "no such log" (the witness reads its checkpoints only)."""
    from client_sdk.audit import readable_logs

    try:
        yield
    except NotFoundError as exc:
        access = {s.log_id: s.access for s in await readable_logs(client)}.get(log_id)
        if access != "witness":
            raise
        raise NotFoundError(
            exc.status,
            exc.code,
            f"log {log_id}: your witness key is in the room's policy, which lets you cosign "
            f"its checkpoints (`parley audit witness {log_id}`), not read its entries; a "
            "mediator grants those (`parley room grant-auditor`)",
            exc.request_id,
        ) from exc


class _ProgressBar:
    """A rich progress bar on stderr for long logs; advanced from worker callbacks too."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        """Show the bar if the log is long."""
        if total < PROGRESS_MIN_ENTRIES:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("verifying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err.console,
            transient=True,
        )
        self._task = self._progress.add_task("entries", total=total)
        self._progress.start()

    def advance(self, count: int) -> None:
        """Count `count` more entries checked."""
        with self._lock:
            if self._progress is not None and self._task is not None:
                self._progress.advance(self._task, count)

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


def _print_report(report: AuditReport, *, offline: bool, pinned: bool) -> None:
    from rich.text import Text

    from client_sdk.protocol.note import format_root

    counts = ", ".join(f"{n} {inline(kind)}" for kind, n in sorted(report.entries.items()))
    out.emit(
        Text("verified", style="bold green").append(
            f" log {inline(report.log_id)} ({inline(report.origin)})"
        ),
        "",
    )
    out.line(f"  entries      {report.size}: {counts or 'none'}")
    out.line(f"  tree         size {report.size}, root {format_root(report.root)}")
    sizes = ", ".join(str(s) for s in report.checkpoints)
    out.line(f"  checkpoints  {len(report.checkpoints)} checked (sizes {sizes})")
    for size, names in report.cosignatures.items():
        out.line(f"  cosigned     size {size} by {', '.join(inline(n) for n in names)}")
    for seen in report.consistent_with:
        out.line(f"  consistent   with {inline(seen)}")
    if report.quorum is not None:
        size, names = report.quorum
        out.line(f"  quorum       met at size {size} ({', '.join(inline(n) for n in names)})")
    if offline:
        key = "pinned with --log-key" if pinned else "the bundle's own (pin it with --log-key)"
        out.line(f"  log key      {inline(report.log_vkey)}, {key}")
    mode = "in a process pool" if report.parallel else "in process"
    out.line(f"  time         {report.seconds:.2f} s, signatures checked {mode}")


@audit_app.command("verify")
def verify(
    log_id: Annotated[
        str | None, typer.Argument(help="The log: a room id, or `directory`.", show_default=False)
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle", help="Verify this exported bundle offline (no server).", dir_okay=False
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="A witness key for the quorum (repeat for several)."),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(help="How many --witness keys must cosign (default: all of them).", min=1),
    ] = None,
    log_key: Annotated[
        str | None, typer.Option("--log-key", help="With --bundle: the log key it must carry.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Processes checking signatures (default: one per core).", min=1),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Rebuild a log from its entries and check every leaf, signature and checkpoint."""
    from client_sdk.audit import KnownCheckpoint, read_bundle, verify_bundle, verify_log
    from client_sdk.audit.witness import WITNESS_STATE_FILENAME, read_witness_state
    from client_sdk.keystore import default_home

    witnesses = tuple(witness or ())
    if quorum is not None and not witnesses:
        raise fail("--quorum counts cosignatures by --witness keys: give at least one", 2)
    if bundle is None and log_id is None:
        raise fail("give a LOG_ID, or --bundle FILE to verify offline", 2)
    if bundle is None and log_key is not None:
        raise fail("--log-key is for --bundle; online, the keystore pins the log key", 2)

    async def online() -> AuditReport:
        assert log_id is not None
        async with _client() as client, _entries_of(client, log_id):
            with _ProgressBar() as bar:
                return await verify_log(
                    client,
                    log_id,
                    witnesses=witnesses,
                    quorum=quorum,
                    workers=workers,
                    progress=bar,
                )

    async def offline() -> AuditReport:
        assert bundle is not None
        try:
            loaded = read_bundle(bundle)
        except OSError as exc:
            raise ProtocolError(f"cannot read {bundle}: {exc.strerror}") from exc
        if log_id is not None and log_id != loaded.log_id:
            raise ProtocolError(f"{bundle} holds log {loaded.log_id}, not {log_id}")
        known = []
        witnessed = read_witness_state(default_home() / WITNESS_STATE_FILENAME).get(loaded.origin)
        if witnessed is not None and witnessed.root is not None:
            source = "the checkpoint this profile's witness cosigned"
            known.append(KnownCheckpoint(source, witnessed.size, witnessed.root))
        with _ProgressBar() as bar:
            return verify_bundle(
                loaded,
                log_vkey=log_key,
                known=known,
                witnesses=witnesses,
                quorum=quorum,
                workers=workers,
                progress=bar,
            )

    if bundle is not None and log_key is None:
        err.line(UNPINNED_WARNING)
    report = _run(online if bundle is None else offline, json_output=json_output)
    if json_output:
        shown = report.to_json()
        if bundle is not None:
            shown["log_key_from"] = "bundle" if log_key is None else "--log-key"
        print_json(shown)
    else:
        _print_report(report, offline=bundle is not None, pinned=log_key is not None)


_ACCESS = {
    "everyone": "every account",
    "member": "you are a member",
    "auditor": "granted to you",
    "witness": "your witness: checkpoints only",
}
"""Why a log is readable, as `parley audit logs` says it (``witness``: the room's signed
policy names your witness key, which reads and cosigns checkpoints, not entries)."""


@audit_app.command("logs")
def logs(json_output: JsonOption = False) -> None:
    """List the logs you may read (audit, export, witness), and why."""
    from client_sdk.audit import readable_logs
    from client_sdk.cli.jsonerrors import with_client_json

    found = with_client_json(readable_logs, json_output=json_output)
    if json_output:
        print_json([summary.model_dump(mode="json") for summary in found])
        return
    from rich.table import Table
    from rich.text import Text

    table = Table("log", "kind", "entries", "access")
    for summary in found:  # cells as Text: ids and origins are the server's words
        table.add_row(
            Text(inline(summary.log_id)),
            summary.kind,
            str(summary.size),
            _ACCESS[summary.access],
        )
    out.print(table)


class BundleFormat(enum.StrEnum):
    """What `parley audit export` writes."""

    TILES = "tiles"
    JSON = "json"


@audit_app.command("export")
def export(
    log_id: LogArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle file to write.")],
    bundle_format: Annotated[
        BundleFormat,
        typer.Option(
            "--format",
            help="tiles: tlog-tiles and entry bundles in a gzipped tar, verified in bounded "
            "memory; json: the single JSON document of earlier versions.",
        ),
    ] = BundleFormat.TILES,
    gzip_output: Annotated[
        bool | None,
        typer.Option(
            "--gzip/--no-gzip", help="--format json: compress (default: when FILE ends in .gz)."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Write a self-contained bundle of the log that `verify --bundle` checks offline."""
    if gzip_output is not None and bundle_format is BundleFormat.TILES:
        raise fail("--gzip/--no-gzip is for --format json (a tiled bundle is compressed)", 2)
    from client_sdk.audit import export_log, export_tiled, write_bundle

    async def work() -> int:
        async with _client() as client, _entries_of(client, log_id):
            if bundle_format is BundleFormat.TILES:
                partial = output.with_name(output.name + ".part")
                try:
                    with partial.open("wb") as out:
                        count = await export_tiled(client, log_id, out)
                    partial.replace(output)
                except OSError as exc:
                    raise ProtocolError(f"cannot write {output}: {exc.strerror}") from exc
                finally:
                    partial.unlink(missing_ok=True)
                return count
            bundle = await export_log(client, log_id)
        try:
            write_bundle(bundle, output, compress=gzip_output)
        except OSError as exc:
            raise ProtocolError(f"cannot write {output}: {exc.strerror}") from exc
        return len(bundle.entries)

    count = _run(work)
    if json_output:
        print_json({"log_id": log_id, "entries": count, "output": str(output)})
    else:
        out.line(f"wrote {count} entries of log {inline(log_id)} to {inline(output)}")


def _witnessed_json(done: WitnessedCheckpoint, witness: str) -> dict[str, object]:
    from client_sdk.protocol.note import format_root

    return {
        "log_id": done.log_id,
        "origin": done.origin,
        "size": done.size,
        "root": format_root(done.root),
        "witness": witness,
        "timestamp": done.timestamp,
        "cosignature": done.cosignature.rstrip("\n"),
    }


class _WitnessGroup(TyperGroup):
    # `parley audit witness LOG` cosigns a Parley log; `... witness serve` is the endpoint.
    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["cosign", *args]
        return super().parse_args(ctx, args)


witness_app = typer.Typer(
    cls=_WitnessGroup,
    help="(Auditors) cosign a log's checkpoints once they are consistent with the last.\n\n"
    "`parley audit witness LOG [--follow] [--interval S] [--count N] [--json]` cosigns a "
    "Parley log (a room id or `directory`; its options: `parley audit witness cosign "
    "--help`); `parley audit witness serve --listen ADDR` serves the c2sp.org/tlog-witness "
    "add-checkpoint endpoint, for any log that speaks the standard.",
    no_args_is_help=True,
)
audit_app.add_typer(witness_app, name="witness")


@witness_app.command("cosign", hidden=True)
def witness(
    log_id: LogArgument,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep polling and cosigning new checkpoints.")
    ] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between polls with --follow.", min=0.05, max=3600.0)
    ] = 5.0,
    count: Annotated[
        int | None, typer.Option(help="Stop after cosigning this many checkpoints.", min=1)
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """(Auditors) cosign the log's newest checkpoint once it is consistent with the last one.

    Prints one line per checkpoint cosigned; refuses (exit 1) a log that was
    forked, rewritten or rolled back.
    """
    from client_sdk.audit import keystore_witness, register_witness, witness_once
    from client_sdk.protocol.note import format_root

    async def work() -> None:
        async with _client() as client:
            own = keystore_witness(client.keystore)
            await register_witness(client, own)
            cosigned = 0
            while True:
                done = await witness_once(client, own, log_id)
                if done is not None:
                    cosigned += 1
                    if json_output:
                        print_json(_witnessed_json(done, own.name))
                    else:
                        out.line(
                            f"cosigned log {inline(log_id)} size {done.size} "
                            f"root {format_root(done.root)} as {inline(own.name)}"
                        )
                    if count is not None and cosigned >= count:
                        return
                elif not follow:
                    err.line(f"log {inline(log_id)}: nothing new to cosign")
                if not follow:
                    return
                await asyncio.sleep(interval)  # polling: the log read API has no push

    _run(work, json_output=json_output)


def _listen_address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise fail(f"--listen {text!r}: give HOST:PORT, e.g. 127.0.0.1:7380", 2)
    return host, int(port)


@witness_app.command("serve")
def serve(
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="ADDR",
            help="HOST:PORT to listen on (port 0: any free port, printed at start).",
        ),
    ] = "127.0.0.1:7380",
    logs: Annotated[
        list[str] | None,
        typer.Option(
            "--log",
            metavar="VKEY",
            help="Follow this log too: its Ed25519 note verifier key, named after the "
            "log's origin (repeat for several).",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the key and URL as one JSON object.")
    ] = False,
) -> None:
    """(Auditors) serve the c2sp.org/tlog-witness endpoint: POST /add-checkpoint.

    Any log that speaks the standard can ask this profile's witness for a
    cosignature. The witness follows the logs given with --log and every log
    it already cosigns (`parley audit witness LOG`), keeps the newest
    checkpoint it cosigned for each, and never cosigns a fork. Prints the
    witness key and the URL, then one line per request on stderr; Ctrl-C stops.
    """
    import socket

    import uvicorn

    from client_sdk.audit import keystore_witness
    from client_sdk.audit.witness_http import ADD_CHECKPOINT_PATH, witness_app
    from client_sdk.keystore import Keystore
    from client_sdk.keystore.profile import default_home, passphrase_from_env_or_prompt

    host, port = _listen_address(listen)
    try:
        own = keystore_witness(Keystore.open(default_home(), passphrase_from_env_or_prompt()))
        for vkey in logs or ():
            name = vkey.partition("+")[0]
            own.follow(name, vkey)
    except VerificationError as exc:
        raise fail(f"--log: {exc}", 2) from exc
    except ParleyError as exc:
        raise fail(str(exc), 2) from exc
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise fail(f"cannot listen on {listen}: {exc.strerror}", 2) from exc
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"http://{shown}:{bound_port}{ADD_CHECKPOINT_PATH}"
    if json_output:
        print_json({"witness_key": own.vkey, "url": url, "logs": len(own.logs())})
    else:
        out.line(f"witness key: {inline(own.vkey)}")
        out.line(f"serving {inline(url)} for {len(own.logs())} logs")
    sys.stdout.flush()
    # A report quotes what a remote log operator sent: one safe line, never markup.
    app = witness_app(own, report=lambda line: err.line(inline(line)))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


@audit_app.command("witness-key")
def witness_key(json_output: JsonOption = False) -> None:
    """(Auditors) print this profile's witness key (made and registered on first use)."""
    from client_sdk.audit import keystore_witness, register_witness

    async def work() -> str:
        async with _client() as client:
            own = keystore_witness(client.keystore)
            await register_witness(client, own)
            return own.vkey

    vkey = _run(work)
    if json_output:
        print_json({"witness_key": vkey})
    else:
        print(inline(vkey))
