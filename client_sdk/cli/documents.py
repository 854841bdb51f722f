"""``parley send ROOM --file PATH``, ``parley download ROOM SEQ -o PATH`` and ``parley
uploads [abandon UPLOAD_ID]``: encrypted documents (docs/design.md §7), with a progress
bar on stderr for files over a few MB."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from client_sdk.cli.common import USAGE, err, fail, out, print_json, with_client
from client_sdk.cli.render import inline

if TYPE_CHECKING:
    from rich.progress import Progress

    from client_sdk.client import ParleyClient
    from client_sdk.client.uploads import Progress as ProgressCallback
    from client_sdk.keystore import PendingUpload
    from client_sdk.protocol.documents import DocumentContent

# rich's progress bar and the SDK are imported where they are used, so `parley
# download --help` stays cheap (`client_sdk.cli.lazy`).

PROGRESS_OVER = 4 * 1024 * 1024
"""Files larger than this get a progress bar."""


@contextmanager
def progress_bar(label: str) -> Iterator[ProgressCallback]:
    """A progress callback that draws a bar on stderr once it learns the transfer is over
    `PROGRESS_OVER` bytes (and does nothing for small files)."""
    bar: Progress | None = None
    task = None

    def update(done: int, total: int) -> None:
        nonlocal bar, task
        if total <= PROGRESS_OVER:
            return
        if bar is None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=err.console,
                transient=True,
            )
            bar.start()
            task = bar.add_task(label, total=total)
        assert task is not None
        bar.update(task, completed=done)

    try:
        yield update
    finally:
        if bar is not None:
            bar.stop()


def human_size(size: int) -> str:
    """A byte count for people."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def document_json(document: DocumentContent) -> dict[str, object]:
    """A document's description as JSON."""
    return {
        "name": document.name,
        "media_type": document.media_type,
        "size": document.size,
        "blob": document.blob,
        "plaintext_sha256": document.plaintext_sha256,
    }


def send_file(room_id: str, file: Path, channel: str, json_output: bool) -> None:
    """Encrypt, upload and send a file (resuming an interrupted upload of it)."""
    if not file.is_file():
        raise fail(f"{file}: no such file", USAGE)
    with progress_bar(f"sending {file.name}") as progress:
        sent = with_client(
            lambda c: c.documents.send_file(room_id, file, channel=channel, progress=progress)
        )
    receipt = sent.receipt
    if json_output:
        print_json(
            {
                "seq": receipt.seq,
                "leaf_index": receipt.leaf_index,
                "message_id": receipt.message_id,
                "document": document_json(sent.document),
                "resumed_from_chunk": sent.resumed_from_chunk,
            }
        )
        return
    resumed = f", resumed after chunk {sent.resumed_from_chunk}" if sent.resumed_from_chunk else ""
    out.line(
        f"sent {inline(sent.document.name)} ({human_size(sent.document.size)}) "
        f"as #{receipt.seq}{resumed}"
    )


def download(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    seq: Annotated[int, typer.Argument(help="The message carrying the document.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the file.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Download a document, check every chunk and its hashes, and write it to -o PATH.

    The file appears at PATH only once all of it checked out.
    """
    if output.is_dir():
        raise fail(f"{output} is a directory; give the file's path", USAGE)
    if not output.parent.is_dir():
        raise fail(f"{output.parent}: no such directory", USAGE)
    with progress_bar(f"downloading #{seq}") as progress:
        document = with_client(
            lambda c: c.documents.download(room_id, seq, output, progress=progress)
        )
    if json_output:
        print_json({"seq": seq, "path": str(output), "document": document_json(document)})
    else:
        out.line(
            f"wrote {inline(output)} ({human_size(document.size)}, {inline(document.name)}); "
            "every chunk checked"
        )


uploads_app = typer.Typer(
    help="Document uploads begun on this profile and not sent yet.", invoke_without_command=True
)


@uploads_app.callback()
def uploads(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List uploads an interrupted `parley send --file` left to resume (send the same
    unchanged file again to resume one, or abandon it)."""
    if ctx.invoked_subcommand is not None:
        return
    pending = with_client(_pending)
    if json_output:
        print_json(
            [
                {
                    "upload_id": p.upload_id,
                    "room_id": p.room_id,
                    "channel": p.channel,
                    "path": p.path,
                    "size": p.size,
                    "uploaded": p.document is not None,
                }
                for p in pending
            ]
        )
        return
    for p in pending:
        state = "uploaded, message not sent" if p.document is not None else "unfinished"
        out.line(
            f"{inline(p.upload_id)}  {inline(p.room_id)} {inline(p.channel)}  {inline(p.path)} "
            f"({human_size(p.size)}, {state})"
        )


async def _pending(client: ParleyClient) -> list[PendingUpload]:
    return client.documents.pending_uploads()


@uploads_app.command("abandon")
def abandon(
    upload_id: Annotated[str, typer.Argument(help="The upload (see `parley uploads`).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Drop an unfinished upload: the server deletes its bytes, this profile its key."""

    async def work(client: ParleyClient) -> bool:
        known = any(p.upload_id == upload_id for p in client.documents.pending_uploads())
        if known:
            await client.documents.abandon(upload_id)
        return known

    if not with_client(work):
        raise fail(f"no upload {upload_id} on this profile (see parley uploads)")
    if json_output:
        print_json({"upload_id": upload_id, "abandoned": True})
    else:
        out.line(f"abandoned {inline(upload_id)}")
