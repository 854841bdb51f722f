"""``parley dossier ...``: commit a record set, disclose parts of it in phases, show what
was disclosed or received, and verify a presentation from a file."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from client_sdk.cli.common import out, print_json
from client_sdk.cli.jsonerrors import failure, with_client_json
from client_sdk.cli.render import inline, who
from client_sdk.protocol.errors import ProtocolError

if TYPE_CHECKING:
    from client_sdk.client import ParleyClient
    from client_sdk.client.dossier_models import ReceivedDisclosure, SeenCommit
    from client_sdk.client.dossier_store import DisclosureLog, StoredDossier

# The SD-JWT and client modules are imported in the commands that use them, so
# `parley dossier --help` stays cheap (`client_sdk.cli.lazy`).

dossier_app = typer.Typer(help="Dossiers: committed record sets, disclosed in phases.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def when(ms: int | None) -> str | None:
    """A millisecond timestamp as ISO 8601 (UTC)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def spec(numbers: list[int] | tuple[int, ...]) -> str:
    """Record numbers as the ``--records`` spec that names them (``1-50,77``)."""
    parts: list[str] = []
    ordered = sorted(numbers)
    start = prev = ordered[0] if ordered else 0
    for number in [*ordered[1:], None]:
        if number is not None and number == prev + 1:
            prev = number
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if number is not None:
            start = prev = number
    return ",".join(parts) if ordered else ""


def _read_input(file: str) -> bytes:
    from client_sdk.protocol.sdjwt import DEFAULT_LIMITS

    if file == "-":
        return sys.stdin.buffer.read(DEFAULT_LIMITS.max_bytes + 1)
    path = Path(file)
    try:
        with path.open("rb") as handle:
            return handle.read(DEFAULT_LIMITS.max_bytes + 1)
    except OSError as exc:
        raise ProtocolError(f"cannot read {file}: {exc.strerror}") from exc


@dossier_app.command("commit")
def commit(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    file: Annotated[str, typer.Argument(help="A JSON list of records, or - for stdin.")],
    title: Annotated[str, typer.Option(help="The dossier's title.")],
    decoys: Annotated[int, typer.Option(help="Decoy digests that hide the count.")] = 0,
    json_output: JsonOption = False,
) -> None:
    """Commit a record set: its issuer-signed JWT (digests only) goes to plenary.

    The records and their disclosures stay on this machine, sealed in the profile.
    """
    from client_sdk.protocol.sdjwt import load_records

    try:
        records = load_records(_read_input(file))
    except ProtocolError as exc:
        raise failure(f"{file}: {exc}", json_output=json_output) from exc
    done = with_client_json(
        lambda c: c.dossiers.commit(room_id, records, title=title, decoys=decoys),
        json_output=json_output,
    )
    if json_output:
        print_json(
            {
                "dossier_id": done.dossier_id,
                "leaf_index": done.leaf_index,
                "seq": done.seq,
                "records": done.records,
                "decoys": done.decoys,
            }
        )
    else:
        out.line(inline(done.dossier_id))


@dossier_app.command("disclose")
def disclose(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    dossier_id: Annotated[str, typer.Argument(help="A dossier you committed.")],
    records: Annotated[str, typer.Option(help="Records, 1-based: 1-50,77.")],
    channel: Annotated[str, typer.Option(help="plenary, caucus-a or caucus-b.")],
    fields: Annotated[
        str | None, typer.Option(help="Fields: name,service_number (default: all).")
    ] = None,
    phase: Annotated[str | None, typer.Option(help="The phase this disclosure is.")] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the presentation here.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Disclose chosen records and fields of a committed dossier on a channel."""
    sent = with_client_json(
        lambda c: c.dossiers.disclose(
            room_id, dossier_id, records=records, fields=fields, channel=channel, phase=phase
        ),
        json_output=json_output,
    )
    if out_file is not None:
        out_file.write_text(sent.presentation + "\n", encoding="ascii")
    if json_output:
        print_json(
            {
                "dossier_id": sent.dossier_id,
                "seq": sent.seq,
                "leaf_index": sent.leaf_index,
                "channel": sent.channel,
                "phase": sent.phase,
                "records": list(sent.records),
                "fields": list(sent.fields),
            }
        )
    else:
        phase_text = f" ({inline(sent.phase)})" if sent.phase else ""
        out.line(
            f"disclosed {len(sent.records)} records ({_names(sent.fields)}) on "
            f"{inline(sent.channel)} as #{sent.seq}{phase_text}"
        )


def _names(names: Any) -> str:
    return ", ".join(inline(name) for name in names)


def _issued_json(client: ParleyClient, dossier: StoredDossier) -> dict[str, Any]:
    from client_sdk.protocol.sdjwt import public_jwk

    state = client.keystore.state
    log: list[DisclosureLog] = client.dossiers.log(dossier.room_id, dossier.dossier_id)
    return {
        "dossier_id": dossier.dossier_id,
        "role": "issuer",
        "title": dossier.title,
        "issuer": {"account_id": state.account_id, "name": state.name},
        "issuer_jwk": public_jwk(state.device_key.public_bytes()),
        "records": dossier.records,
        "decoys": dossier.decoys,
        "fields": dossier.fields,
        "commit_seq": dossier.commit_seq,
        "leaf_index": dossier.leaf_index,
        "committed_at": when(dossier.committed_at),
        "disclosures": [
            {
                "seq": e.seq,
                "channel": e.channel,
                "to": e.to,
                "phase": e.phase,
                "records": spec(e.records),
                "record_count": len(e.records),
                "fields": e.fields,
                "sent_at": when(e.sent_at),
            }
            for e in log
        ],
    }


def _received_json(dossier_id: str, found: list[ReceivedDisclosure]) -> dict[str, Any]:
    from client_sdk.protocol.sdjwt import public_jwk

    good = [d for d in found if d.verified]
    first = good[0] if good else found[0]
    records: dict[int, dict[str, Any]] = {}
    for disclosure in good:
        for record in disclosure.records:
            entry = records.setdefault(
                record.number,
                {
                    "number": record.number,
                    "fields": {},
                    "disclosed_at": when(disclosure.disclosed_at),
                    "phase": disclosure.phase,
                },
            )
            entry["fields"].update(record.fields)
    return {
        "dossier_id": dossier_id,
        "role": "recipient",
        "title": first.title,
        "issuer": {"account_id": first.sender_account_id, "name": first.sender_name},
        "issuer_jwk": public_jwk(first.issuer_key) if first.issuer_key else None,
        "commit_seq": first.commit_seq,
        "leaf_index": first.commit_seq - 1,
        "committed_at": when(first.committed_at),
        "records": [records[n] for n in sorted(records)],
        "disclosures": [
            {
                "seq": d.seq,
                "channel": d.channel,
                "phase": d.phase,
                "disclosed_at": when(d.disclosed_at),
                "records": len(d.records),
                "fields": d.field_names,
                "verified": d.verified,
                "refused": d.refused,
            }
            for d in found
        ],
    }


@dossier_app.command("show")
def show(
    room_id: Annotated[str, typer.Argument(help="The room.")],
    dossier_id: Annotated[str | None, typer.Argument(help="Only this dossier.")] = None,
    json_output: JsonOption = False,
) -> None:
    """The issuer sees what was disclosed to whom and when; a recipient, the records
    verified so far."""

    async def work(client: ParleyClient) -> list[dict[str, Any]]:
        me = client.keystore.state.account_id
        shown = [_issued_json(client, d) for d in client.dossiers.own(room_id)]
        by_dossier: dict[str, list[ReceivedDisclosure]] = {}
        for disclosure in await client.dossiers.received(room_id):
            if disclosure.sender_account_id != me:
                by_dossier.setdefault(disclosure.dossier_id, []).append(disclosure)
        shown += [_received_json(k, v) for k, v in by_dossier.items()]
        return [d for d in shown if dossier_id is None or d["dossier_id"] == dossier_id]

    shown = with_client_json(work, json_output=json_output)
    if dossier_id is not None and not shown:
        raise failure(f"no dossier {dossier_id} in room {room_id}", json_output=json_output)
    if json_output:
        print_json(shown[0] if dossier_id is not None else {"room_id": room_id, "dossiers": shown})
        return
    for dossier in shown:
        _print_dossier(dossier)


def _print_dossier(d: dict[str, Any]) -> None:
    issuer = who(d["issuer"]["name"], account_id=d["issuer"]["account_id"])
    out.line(
        f"{inline(d['title'])} ({inline(d['dossier_id'])}) by {issuer}, "
        f"committed #{d['commit_seq']} at {d['committed_at']}"
    )
    if d["role"] == "issuer":
        out.line(f"  {d['records']} records, fields {_names(d['fields'])}")
        for e in d["disclosures"]:
            phase = f", phase {inline(e['phase'])}" if e["phase"] else ""
            out.line(
                f"  #{e['seq']} {e['sent_at']} to {inline(e['channel'])} ({_names(e['to'])})"
                f"{phase}: records {inline(e['records'])}, fields {_names(e['fields'])}"
            )
        return
    for e in d["disclosures"]:
        status = "verified" if e["verified"] else f"REFUSED: {inline(e['refused'])}"
        out.line(
            f"  #{e['seq']} {e['disclosed_at']} {inline(e['channel'])} "
            f"phase {inline(e['phase'] or '-')}: {e['records']} records, {status}"
        )
    for record in d["records"]:
        values = ", ".join(f"{inline(k)}={inline(v)}" for k, v in record["fields"].items())
        out.line(f"  record {record['number']}: {values}")


@dossier_app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="A presentation (compact SD-JWT).")],
    room: Annotated[str, typer.Option(help="The room it must be committed in.")],
    json_output: JsonOption = False,
) -> None:
    """Verify a presentation against its commitment in the room's log (exit 0 only if it
    verifies)."""
    try:
        text = file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise failure(f"cannot read {file}: {exc}", json_output=json_output) from exc
    result = with_client_json(lambda c: c.dossiers.verify(room, text), json_output=json_output)
    from client_sdk.protocol.sdjwt import public_jwk

    if json_output:
        print_json(
            {
                "ok": True,
                "verified": True,
                "dossier_id": result.dossier_id,
                "title": result.title,
                "issuer": {"account_id": result.sender_account_id, "name": result.sender_name},
                "issuer_jwk": public_jwk(result.issuer_key) if result.issuer_key else None,
                "commit_seq": result.commit_seq,
                "committed_at": when(result.committed_at),
                "records": [{"number": r.number, "fields": dict(r.fields)} for r in result.records],
            }
        )
    else:
        issuer = who(result.sender_name, account_id=result.sender_account_id)
        out.line(
            f"verified: {len(result.records)} records ({_names(result.field_names)}) of "
            f"{inline(repr(result.title))} by {issuer}, committed #{result.commit_seq} at "
            f"{when(result.committed_at)}"
        )


def read_line(seen: SeenCommit | ReceivedDisclosure) -> str:
    """How `parley read` shows a commitment or a disclosure: one line."""
    from client_sdk.client.dossier_models import SeenCommit

    if isinstance(seen, SeenCommit):
        return f"[dossier] committed {inline(repr(seen.title))} ({inline(seen.dossier_id)})"
    if seen.refused is not None:
        return f"[dossier] REFUSED disclosure of {inline(seen.dossier_id)}: {inline(seen.refused)}"
    fields = seen.field_names
    return (
        f"[dossier] {inline(seen.sender_name)} discloses {inline(repr(seen.title))}, "
        f"phase {inline(seen.phase or '-')}: {len(seen.records)} records, {len(fields)} fields "
        f"({_names(fields)}), verified"
    )


def read_json(seen: SeenCommit | ReceivedDisclosure) -> dict[str, Any]:
    """What `parley read --json` adds to a commitment or disclosure (``dossier``)."""
    from client_sdk.client.dossier_models import SeenCommit
    from client_sdk.protocol.sdjwt import public_jwk

    if isinstance(seen, SeenCommit):
        return {"kind": "commit", "dossier_id": seen.dossier_id, "title": seen.title}
    return {
        "kind": "disclosure",
        "dossier_id": seen.dossier_id,
        "title": seen.title,
        "phase": seen.phase,
        "commit_seq": seen.commit_seq,
        "committed_at": when(seen.committed_at),
        "disclosed_at": when(seen.disclosed_at),
        "verified": seen.verified,
        "refused": seen.refused,
        "issuer_jwk": public_jwk(seen.issuer_key) if seen.issuer_key else None,
        "fields": seen.field_names,
        "records": [{"number": r.number, "fields": dict(r.fields)} for r in seen.records],
    }
