"""``parley agree ...``: agreements (docs/design.md §7).

``propose`` uploads a document encrypted to the room and logs its hash with the
signers it needs; ``sign`` downloads it, checks it and signs that exact hash (the
mediator countersigns last); ``show`` says who signed which hash and when;
``verify`` checks a file against an audit bundle offline (no server, no profile),
exit 1 unless the bundle verifies and the agreement naming the file is complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from client_sdk.cli.common import fail, out, print_json
from client_sdk.cli.documents import human_size, progress_bar
from client_sdk.cli.dossier import when
from client_sdk.cli.jsonerrors import USAGE, failure, run_json, with_client_json
from client_sdk.cli.render import inline, who
from client_sdk.protocol.errors import ProtocolError

if TYPE_CHECKING:
    from client_sdk.audit import AgreementCheck
    from client_sdk.client import AgreementView, Message

# The SDK's modules are imported in the functions that use them, so `parley agree
# --help` stays cheap (`client_sdk.cli.lazy`).

agree_app = typer.Typer(
    help="Agreements: propose a document, sign its exact hash, show who signed, verify.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RoomArgument = Annotated[str, typer.Argument(help="The room.")]
AgreementArgument = Annotated[str, typer.Argument(help="The agreement id.")]


@agree_app.command("propose")
def propose(
    room_id: RoomArgument,
    file: Annotated[Path, typer.Argument(help="The document (PDF, text...).", dir_okay=False)],
    title: Annotated[str, typer.Option("--title", help="The agreement's title.")],
    signer: Annotated[
        list[str] | None,
        typer.Option(
            "--signer",
            help="An account that must sign (repeat; default: one per side plus the mediator).",
        ),
    ] = None,
    supersedes: Annotated[
        str | None, typer.Option("--supersedes", help="The earlier proposal this replaces.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Upload FILE encrypted to the room and propose it for signature; print its id."""
    with progress_bar("uploading") as progress:
        view = with_client_json(
            lambda c: c.agreements.propose(
                room_id,
                file,
                title=title,
                signers=signer or None,
                supersedes=supersedes,
                progress=progress,
            ),
            json_output=json_output,
        )
    if json_output:
        print_json(view.to_json())
    else:
        out.line(inline(view.agreement_id))


@agree_app.command("sign")
def sign(
    room_id: RoomArgument,
    agreement_id: AgreementArgument,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also keep the copy signed here.", dir_okay=False),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Download the document, check it against the proposal's hash, and sign that hash.

    The mediator countersigns with the same command, after every other signer.
    """
    with progress_bar("checking") as progress:
        view = with_client_json(
            lambda c: c.agreements.sign(room_id, agreement_id, output=output, progress=progress),
            json_output=json_output,
        )
    if json_output:
        print_json(view.to_json())
        return
    state = "complete" if view.complete else f"waiting for {_waiting(view)}"
    out.line(
        f"signed agreement {inline(view.agreement_id)} (sha256 {inline(view.document_sha256)}); "
        f"{state}"
    )


@agree_app.command("download")
def download(
    room_id: RoomArgument,
    agreement_id: AgreementArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Write it here.", dir_okay=False)],
    json_output: JsonOption = False,
) -> None:
    """Write the agreement's document to a file, checked against the proposal's hash."""
    with progress_bar("downloading") as progress:
        view = with_client_json(
            lambda c: c.agreements.download(room_id, agreement_id, output, progress=progress),
            json_output=json_output,
        )
    if json_output:
        print_json({"output": str(output), **view.to_json()})
    else:
        out.line(f"wrote {inline(output)}")


@agree_app.command("show")
def show(
    room_id: RoomArgument,
    agreement_id: Annotated[
        str | None, typer.Argument(help="One agreement (default: every one).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Who signed which hash and when, and whether each agreement is complete."""
    if agreement_id is not None:
        one = with_client_json(
            lambda c: c.agreements.show(room_id, agreement_id), json_output=json_output
        )
        if json_output:
            print_json(one.to_json())
        else:
            _print(one)
        return
    every = with_client_json(lambda c: c.agreements.list(room_id), json_output=json_output)
    if json_output:
        print_json([view.to_json() for view in every])
        return
    if not every:
        out.line("no agreements")
    for view in every:
        _print(view)


@agree_app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="The signed document.", dir_okay=False)],
    bundle: Annotated[
        Path, typer.Option("--bundle", help="An audit bundle of its room.", dir_okay=False)
    ],
    log_key: Annotated[
        str | None,
        typer.Option("--log-key", help="The server's log key, obtained out of band."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check offline that FILE is a complete agreement of the room BUNDLE audits.

    Exit 0 only if the bundle verifies, an agreement names the file's hash, and
    every signature it requires is logged.
    """
    from client_sdk.audit import read_bundle, verify_agreement  # only this command needs it

    try:
        loaded = read_bundle(bundle)
    except OSError as exc:
        raise failure(
            f"cannot read {bundle}: {exc.strerror}", code=USAGE, json_output=json_output
        ) from exc
    except ProtocolError as exc:
        raise failure(str(exc), json_output=json_output) from exc

    if not file.is_file():
        raise failure(f"cannot read {file}: no such file", code=USAGE, json_output=json_output)

    async def work() -> AgreementCheck:
        return verify_agreement(file, loaded, log_vkey=log_key)

    check = run_json(work, json_output=json_output)
    view = check.agreement
    reason = None if view.complete else f"not complete: waiting for {_waiting(view)}"
    if json_output:
        print_json(
            {
                "ok": view.complete,
                "verified": True,
                "complete": view.complete,
                "reason": reason,
                "document_sha256": check.document_sha256,
                "log_key": check.report.log_vkey,
                "log_key_pinned": check.log_key_pinned,
                "agreement": view.to_json(),
                "others": [other.to_json() for other in check.others],
            }
        )
    else:
        pinned = (
            "the log key given" if log_key else "the bundle's own log key (pin one with --log-key)"
        )
        out.line(
            f"the bundle verifies against {pinned}: log of room {inline(view.room_id)}, "
            f"{check.report.size} entries"
        )
        _print(view)
    if reason is not None:
        raise fail(f"agreement {inline(view.agreement_id)} is {reason}", code="incomplete")


def _waiting(view: AgreementView) -> str:
    return ", ".join(
        who(s.name or "", side=s.side, account_id=s.account_id)
        if s.account_id
        else f"side {inline(s.side)}"
        for s in view.signers
        if s.signature is None
    )


def _print(view: AgreementView) -> None:
    title = f'"{inline(view.title)}"' if view.title is not None else "(title sealed)"
    proposer = who(view.proposer_name, account_id=view.proposer_account_id)
    lines = [
        f"agreement {inline(view.agreement_id)} {title}: #{view.seq}, proposed by "
        f"{proposer} at {when(view.proposed_at)}",
    ]
    if view.document is not None:
        lines.append(
            f"  document     {inline(view.document.name)} ({human_size(view.document.size)}, "
            f"{inline(view.document.media_type)})"
        )
    lines.append(f"  sha256       {inline(view.document_sha256)}")
    if view.supersedes:
        lines.append(f"  supersedes   {inline(view.supersedes)}")
    if view.superseded_by:
        lines.append(f"  superseded   by {inline(view.superseded_by)}: it takes no more signatures")
    for signer in view.signers:
        slot = (
            f"side {inline(signer.side)}"
            if signer.account_id is None
            else who(signer.name or "", side=signer.side, account_id=signer.account_id)
        )
        found = signer.signature
        if found is None:
            lines.append(f"  {slot:<12} waiting")
        else:
            signed_by = who(found.name, side=found.side, account_id=found.account_id)
            lines.append(
                f"  {slot:<12} signed by {signed_by} ({inline(found.account_id)}) at "
                f"{when(found.server_time)} (#{found.seq}), sha256 {inline(found.document_sha256)}"
            )
    lines.append(f"  complete     {'yes' if view.complete else 'no'}")
    for line in lines:
        out.line(line)


def read_line(message: Message) -> str | None:
    """How `parley read` shows an agreement event (None if it is not one)."""
    from client_sdk.protocol.instruments.agreements import (
        AgreementContent,
        AgreementProposeAct,
        AgreementSignAct,
    )

    act = message.instrument
    if isinstance(act, AgreementProposeAct):
        try:
            content = AgreementContent.model_validate(message.content)
        except ValueError:
            return f"[agreement {inline(act.instrument_id)} proposed (sealed)]"
        return (
            f"[agreement proposed] {inline(repr(content.title))}: {inline(content.document.name)} "
            f"({human_size(content.document.size)}) - parley agree sign "
            f"{inline(message.room_id)} {inline(act.instrument_id)}"
        )
    if isinstance(act, AgreementSignAct):
        return (
            f"[signed agreement {inline(act.agreement_id)}, sha256 {inline(act.document_sha256)}]"
        )
    return None


def read_json(message: Message) -> dict[str, object] | None:
    """What `parley read --json` adds for an agreement event (None if it is not one)."""
    from client_sdk.protocol.instruments.agreements import AgreementProposeAct, AgreementSignAct

    act = message.instrument
    if isinstance(act, AgreementProposeAct):
        title = message.content.get("title") if message.content.get("type") == "agreement" else None
        return {
            "act": act.act,
            "agreement_id": act.instrument_id,
            "title": title,
            "document_sha256": act.document_sha256,
            "signers": [s.model_dump(mode="json") for s in act.signers],
            "supersedes": act.supersedes,
        }
    if isinstance(act, AgreementSignAct):
        return {
            "act": act.act,
            "agreement_id": act.agreement_id,
            "account_id": act.account_id,
            "document_sha256": act.document_sha256,
        }
    return None
