"""``parley offer ...``: sealed-offer rounds (docs/design.md §7). A mediator opens a round;
each side commits an offer, then reveals it; after the deadline a side that did not
reveal is opened from escrow; a blind round is settled by the mediator; ``show`` prints
every round with each opening checked against its commitment."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from client_sdk.cli.common import out, print_json
from client_sdk.cli.jsonerrors import USAGE, failure, with_client_json
from client_sdk.cli.render import inline

if TYPE_CHECKING:
    from client_sdk.client import OfferAct, OfferRound, ParleyClient

offer_app = typer.Typer(help="Sealed-offer rounds: commit, reveal, escrow, settle.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RoomArg = Annotated[str, typer.Argument(help="The room.")]
RoundArg = Annotated[str, typer.Argument(help="The round (as `parley offer open` printed it).")]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SHORT = re.compile(r"^(?:(\d+)([smhd]))+$")
_SHORT_PART = re.compile(r"(\d+)([smhd])")
_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


class RuleChoice(StrEnum):
    """How a blind round is settled."""

    OVERLAP = "overlap"
    MIDPOINT = "midpoint"


class SideChoice(StrEnum):
    """A party side."""

    A = "a"
    B = "b"


def parse_deadline(text: str, now_ms: int) -> int:
    """A deadline as ms since the epoch: a duration from now (``90s``, ``10m``, ``1h30m``,
    ``2d``, ``PT15M``) or an ISO 8601 time (``2026-12-01T18:00:00Z``; UTC if no offset)."""
    seconds: int | None = None
    if _SHORT.match(text):
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _SHORT_PART.findall(text))
    elif (iso := _ISO_DURATION.match(text)) is not None and text not in ("P", "PT"):
        days, hours, minutes, secs = (int(g or 0) for g in iso.groups())
        span = timedelta(days=days, hours=hours, minutes=minutes, seconds=secs)
        seconds = int(span.total_seconds())
    if seconds is not None:
        if seconds <= 0:
            raise ValueError("the deadline must be in the future")
        return now_ms + seconds * 1000
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--deadline is a duration (90s, 10m, 1h30m, PT15M) or an ISO 8601 time, not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def when(ms: int | None) -> str | None:
    """A millisecond timestamp as ISO 8601 (UTC)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def act_json(act: OfferAct) -> dict[str, Any]:
    """A round act this device logged, as JSON."""
    shown: dict[str, Any] = {"round_id": act.round_id, "act": act.act, "seq": act.seq}
    if act.side is not None:
        shown["side"] = act.side
    if act.value is not None:
        shown["value"] = act.value
    if act.act == "offer-settle":
        shown.update(overlap=act.overlap, midpoint=act.midpoint)
    return shown


def round_json(found: OfferRound) -> dict[str, Any]:
    """A round as `parley offer show --json` prints it."""
    settlement = found.settlement
    return {
        "round_id": found.round_id,
        "question": found.question,
        "status": found.status,
        "blind": found.blind,
        "rule": found.rule,
        "offering_side": found.offering_side,
        "sides": found.sides,
        "deadline": when(found.deadline),
        "opened_seq": found.opened_seq,
        "opened_by": found.opened_by,
        "closed_seq": found.closed_seq,
        "closed_at": when(found.closed_at),
        "offers": [
            {
                "side": o.side,
                "account_id": o.account_id,
                "name": o.name,
                "commitment": o.commitment,
                "commit_seq": o.commit_seq,
                "revealed_seq": o.revealed_seq,
                "escrow_seq": o.escrow_seq,
                "value": o.value,
                "note": o.note,
                "opened_from": o.opened_from,
                "refused": o.refused,
            }
            for o in found.offers
        ],
        "settlement": None
        if settlement is None
        else {
            "seq": settlement.seq,
            "overlap": settlement.overlap,
            "midpoint": settlement.midpoint,
            "checked": settlement.checked,
            "refused": settlement.refused,
        },
    }


def _act(
    work: Callable[[ParleyClient], Awaitable[OfferAct]],
    say: Callable[[OfferAct], str],
    json_output: bool,
) -> None:
    """Run one act of a round and print what was logged: `say`'s line, or the act's JSON."""
    done = with_client_json(work, json_output=json_output)
    if json_output:
        print_json(act_json(done))
    else:
        out.line(say(done))  # what this device just logged; made safe all the same


@offer_app.command("open")
def open_round(
    room_id: RoomArg,
    question: Annotated[str, typer.Option("--question", help="What the offers answer.")],
    blind: Annotated[
        bool, typer.Option("--blind", help="Openings go only to the mediators.")
    ] = False,
    deadline: Annotated[
        str | None,
        typer.Option(
            "--deadline",
            metavar="DURATION_OR_ISO8601",
            help="When commitments stop (10m, 1h30m, PT15M or 2026-12-01T18:00:00Z).",
        ),
    ] = None,
    rule: Annotated[
        RuleChoice, typer.Option("--rule", help="How a blind round is settled.")
    ] = RuleChoice.OVERLAP,
    offering_side: Annotated[
        SideChoice,
        typer.Option("--offering-side", help="The side whose number is what it would give."),
    ] = SideChoice.A,
    json_output: JsonOption = False,
) -> None:
    """(Mediators) open a sealed-offer round and print its id."""
    try:
        due = None if deadline is None else parse_deadline(deadline, time.time_ns() // 1_000_000)
    except ValueError as exc:
        raise failure(str(exc), code=USAGE, json_output=json_output) from exc
    opened = with_client_json(
        lambda c: c.offers.open_round(
            room_id,
            question,
            blind=blind,
            deadline=due,
            rule=rule.value,
            offering_side=offering_side.value,
        ),
        json_output=json_output,
    )
    if json_output:
        print_json({**act_json(opened), "deadline": when(due)})
    else:
        out.line(inline(opened.round_id))


@offer_app.command("commit")
def commit(
    room_id: RoomArg,
    round_id: RoundArg,
    value: Annotated[str, typer.Argument(help="Your offer: a decimal number.")],
    note: Annotated[str, typer.Option("--note", help="A note that goes with it.")] = "",
    json_output: JsonOption = False,
) -> None:
    """Commit your side's offer: a salted hash is logged, the offer itself stays in this
    profile (and in escrow to the mediators) until you reveal it."""
    _act(
        lambda c: c.offers.commit(room_id, round_id, value, note),
        lambda done: f"committed side {done.side}'s offer in round {round_id} as #{done.seq}",
        json_output,
    )


@offer_app.command("reveal")
def reveal(room_id: RoomArg, round_id: RoundArg, json_output: JsonOption = False) -> None:
    """Reveal your side's offer (once every side committed, or after the deadline)."""
    _act(
        lambda c: c.offers.reveal(room_id, round_id),
        lambda done: (
            f"revealed side {done.side}'s offer {done.value} in round {round_id} as #{done.seq}"
        ),
        json_output,
    )


@offer_app.command("close")
def close(room_id: RoomArg, round_id: RoundArg, json_output: JsonOption = False) -> None:
    """Log the round's close: anyone, once its deadline passed; a mediator, any time, if
    it has none. Reveals no longer wait for every side, and escrows can be opened."""
    _act(
        lambda c: c.offers.close(room_id, round_id),
        lambda done: f"closed round {round_id} as #{done.seq}",
        json_output,
    )


@offer_app.command("open-escrow")
def open_escrow(
    room_id: RoomArg,
    round_id: RoundArg,
    side: Annotated[SideChoice, typer.Argument(help="The side that did not reveal.")],
    json_output: JsonOption = False,
) -> None:
    """(Mediators) after the deadline, open a side's escrowed offer and log it."""
    _act(
        lambda c: c.offers.open_escrow(room_id, round_id, side.value),
        lambda done: (
            f"opened side {done.side}'s escrow in round {round_id} as #{done.seq}: {done.value}"
        ),
        json_output,
    )


@offer_app.command("settle")
def settle(room_id: RoomArg, round_id: RoundArg, json_output: JsonOption = False) -> None:
    """(Mediators) announce whether a blind round's offers overlap (and the midpoint)."""
    _act(
        lambda c: c.offers.settle(room_id, round_id),
        lambda done: (
            f"settled round {round_id} as #{done.seq}: {_outcome(done.overlap, done.midpoint)}"
        ),
        json_output,
    )


def _outcome(overlap: bool | None, midpoint: str | None) -> str:
    text = "the offers overlap" if overlap else "the offers do not overlap"
    return text + (f", midpoint {inline(midpoint)}" if midpoint is not None else "")


@offer_app.command("show")
def show(
    room_id: RoomArg,
    round_id: Annotated[str | None, typer.Argument(help="Only this round.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Every round (or one): each side's commitment and its opening, checked against it,
    and a blind round's settlement, checked against the openings this device holds."""
    found = with_client_json(lambda c: c.offers.rounds(room_id, round_id), json_output=json_output)
    if json_output:
        shown = [round_json(r) for r in found]
        print_json(shown[0] if round_id is not None and shown else shown)
        return
    if not found:
        out.line("no offer rounds")
    for each in found:
        _print_round(each)


def _print_round(found: OfferRound) -> None:
    kind = "blind, " if found.blind else ""
    due = f", deadline {when(found.deadline)}" if found.deadline is not None else ""
    question = inline(found.question) if found.question is not None else "(not readable here)"
    lines = [
        f"round {inline(found.round_id)} ({kind}{inline(found.rule)}, {inline(found.status)}"
        f"{due}, opened by {inline(found.opened_by)} at #{found.opened_seq})",
        f"  question: {question}",
    ]
    for offer in found.offers:
        if offer.value is not None:
            note = f" ({inline(offer.note)})" if offer.note else ""
            shown = f"{inline(offer.value)}{note} [{_source(offer.opened_from)}]"
        else:
            shown = "sealed"
        lines.append(
            f"  side {inline(offer.side)} ({inline(offer.name)}): {shown}, "
            f"committed at #{offer.commit_seq}"
        )
        if offer.refused is not None:
            lines.append(f"    REFUSED: {inline(offer.refused)}")
    for side in found.sides:
        if side not in {o.side for o in found.offers}:
            lines.append(f"  side {inline(side)}: no commitment")
    settlement = found.settlement
    if settlement is not None:
        if settlement.refused is not None:
            lines.append(f"  settlement #{settlement.seq}: REFUSED, {inline(settlement.refused)}")
        elif settlement.overlap is None:
            lines.append(f"  settlement #{settlement.seq}: not readable here")
        else:
            checked = "checked against both openings" if settlement.checked else "not checked"
            outcome = _outcome(settlement.overlap, settlement.midpoint)
            lines.append(f"  settlement #{settlement.seq}: {outcome} ({checked})")
    for line in lines:
        out.line(line)


def _source(opened_from: str | None) -> str:
    return {
        "reveal": "revealed, checked",
        "escrow": "opened from escrow, checked",
        "own": "yours, not revealed yet",
    }.get(opened_from or "", "")
