"""The opening of a prisoner-exchange negotiation, every step a real `parley` process
with its own profile against a real `parley serve` (the README's dossier walkthrough).

Side A commits a 500-record roster; discloses names and service numbers of 50
records to the mediator only (caucus-a), then the same 50 to side B in plenary
as phase 1; side B verifies them against the commitment; side B commits its
own list and discloses in turn; side A hands an outsider an excerpt of three
plenary messages, which the outsider verifies offline in a process with no
profile; the room passes `parley audit verify` and an offline bundle check.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cast, Deployment
from tests.support.cli import CliResult, cli_env, run_parley

# The scene plays some thirty `parley` processes in the first test's set-up, one after
# another as on the parties' machines; on a loaded machine that outlasts 120 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RANKS = ["private", "corporal", "sergeant", "lieutenant", "captain"]
PLACES = ["Northern ridge", "River crossing", "Eastern village", "Airfield"]
HEALTH = ["stable", "wounded", "requires treatment"]


def roster(side: str, count: int) -> list[dict[str, Any]]:
    """`count` detainee records held by `side`, six fields each."""
    return [
        {
            "name": f"Detainee {side}-{n}",
            "rank": RANKS[n % len(RANKS)],
            "service_number": f"{side}{n:06d}",
            "date_of_capture": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}",
            "place_of_capture": PLACES[n % len(PLACES)],
            "health_status": HEALTH[n % len(HEALTH)],
        }
        for n in range(1, count + 1)
    ]


@dataclass(frozen=True, slots=True)
class Scene:
    """What every step printed."""

    room_id: str
    cast: Cast
    workdir: Path
    a_commit: dict[str, Any]
    to_mediator: CliResult
    phase_1: CliResult
    b_show: dict[str, Any]
    b_verify: CliResult
    b_read: list[dict[str, Any]]
    mediator_read: list[dict[str, Any]]
    b_commit: dict[str, Any]
    a_show_b: dict[str, Any]
    a_show_own: dict[str, Any]
    excerpt: CliResult
    excerpt_seqs: list[int]
    outsider: CliResult
    audit: dict[str, Any]
    bundle: CliResult
    log_key: str


def _seq(result: CliResult) -> int:
    """The sequence number `parley send` ("sent as #N") or `dossier disclose` printed."""
    match = re.search(r"as #(\d+)", result.ok().stdout)
    assert match, result.describe()
    return int(match.group(1))


@pytest.fixture(scope="module")
def scene(
    shared_deployment: Deployment, cast: Cast, tmp_path_factory: pytest.TempPathFactory
) -> Scene:
    shared_deployment.ensure_running()
    work = tmp_path_factory.mktemp("dossiers")
    mediator, alice, bob = cast.mediator.env, cast.alice.env, cast.bob.env
    room = run_parley(["room", "create", "Prisoner exchange"], env=mediator).ok().stdout.strip()
    run_parley(["room", "add", room, cast.alice.account_id, "--side", "a"], env=mediator).ok()
    run_parley(["room", "add", room, cast.bob.account_id, "--side", "b"], env=mediator).ok()
    run_parley(["room", "caucus", room, "open", "--side", "a"], env=mediator).ok()
    opening = run_parley(["send", room, "Side A tables its list of detainees."], env=alice)

    (work / "roster-a.json").write_text(json.dumps(roster("A", 500)))
    # The README's command: the dossier id alone on stdout.
    commit_a = ["dossier", "commit", room, str(work / "roster-a.json")]
    commit_a += ["--title", "Detainees held by A", "--decoys", "100"]
    dossier_a = run_parley(commit_a, env=alice).ok().stdout.strip()
    chosen = ["--records", "1-50", "--fields", "name,service_number"]
    to_mediator = run_parley(
        [
            "dossier",
            "disclose",
            room,
            dossier_a,
            *chosen,
            "--channel",
            "caucus-a",
            "--phase",
            "preview for the mediator",
        ],
        env=alice,
    ).ok()
    phase_1 = run_parley(
        [
            "dossier",
            "disclose",
            room,
            dossier_a,
            *chosen,
            "--channel",
            "plenary",
            "--phase",
            "phase 1",
            "--out",
            str(work / "phase-1.sdjwt"),
        ],
        env=alice,
    ).ok()

    b_show = run_parley(["dossier", "show", room, dossier_a, "--json"], env=bob).json()
    b_verify = run_parley(
        ["dossier", "verify", str(work / "phase-1.sdjwt"), "--room", room], env=bob
    )
    b_read = run_parley(["read", room, "--json"], env=bob).json_lines()
    mediator_read = run_parley(["read", room, "--json"], env=mediator).json_lines()

    b_commit = run_parley(
        ["dossier", "commit", room, "-", "--title", "Detainees held by B", "--json"],
        env=bob,
        stdin=json.dumps(roster("B", 120)),
    ).json()
    b_phase = run_parley(
        [
            "dossier",
            "disclose",
            room,
            b_commit["dossier_id"],
            "--records",
            "1-20",
            "--fields",
            "name,service_number",
            "--channel",
            "plenary",
            "--phase",
            "phase 1",
        ],
        env=bob,
    ).ok()
    a_show_b = run_parley(
        ["dossier", "show", room, b_commit["dossier_id"], "--json"], env=alice
    ).json()
    a_show_own = run_parley(["dossier", "show", room, dossier_a, "--json"], env=alice).json()
    a_commit = {"seq": a_show_own["commit_seq"], **a_show_own}

    seqs = [_seq(opening), _seq(phase_1), _seq(b_phase)]
    excerpt = run_parley(
        ["excerpt", room, *map(str, seqs), "--out", str(work / "excerpt.json")], env=alice
    ).ok()
    log_key = excerpt.stdout.splitlines()[-1].removeprefix("log key: ")
    nobody = cli_env(PARLEY_HOME=str(work / "no-profile"))
    outsider = run_parley(
        ["excerpt", "verify", str(work / "excerpt.json"), "--log-key", log_key, "--json"],
        env=nobody,
    )
    audit = run_parley(["audit", "verify", room, "--json"], env=mediator).json()
    run_parley(["audit", "export", room, "--output", str(work / "bundle.json")], env=mediator).ok()
    bundle = run_parley(
        ["audit", "verify", "--bundle", str(work / "bundle.json"), "--log-key", log_key],
        env=nobody,
    )
    return Scene(
        room_id=room,
        cast=cast,
        workdir=work,
        a_commit=a_commit,
        to_mediator=to_mediator,
        phase_1=phase_1,
        b_show=b_show,
        b_verify=b_verify,
        b_read=b_read,
        mediator_read=mediator_read,
        b_commit=b_commit,
        a_show_b=a_show_b,
        a_show_own=a_show_own,
        excerpt=excerpt,
        excerpt_seqs=seqs,
        outsider=outsider,
        audit=audit,
        bundle=bundle,
        log_key=log_key,
    )


def test_the_commit_names_the_dossier_its_commitment_and_record_count(scene: Scene) -> None:
    assert scene.a_commit["records"] == 500
    assert scene.a_commit["decoys"] == 100
    assert scene.a_commit["leaf_index"] == scene.a_commit["seq"] - 1
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", scene.a_commit["dossier_id"])


def test_side_b_sees_the_fifty_names_and_service_numbers_and_nothing_else(scene: Scene) -> None:
    show = scene.b_show
    assert show["role"] == "recipient"
    assert show["title"] == "Detainees held by A"
    assert show["issuer"]["name"] == "Alice"
    assert show["issuer_jwk"]["kty"] == "OKP"
    assert show["issuer_jwk"]["crv"] == "Ed25519"
    assert show["commit_seq"] == scene.a_commit["seq"]
    assert [r["number"] for r in show["records"]] == list(range(1, 51))
    expected = roster("A", 50)
    assert [r["fields"] for r in show["records"]] == [
        {"name": r["name"], "service_number": r["service_number"]} for r in expected
    ]
    # Only the plenary phase reached side B; the caucus preview did not.
    assert [(d["phase"], d["verified"]) for d in show["disclosures"]] == [("phase 1", True)]


def test_the_presentation_file_verifies_against_the_commitment(scene: Scene) -> None:
    assert scene.b_verify.ok().stdout.startswith("verified: 50 records (name, service_number)")
    tampered = scene.workdir / "tampered.sdjwt"
    text = (scene.workdir / "phase-1.sdjwt").read_text()
    tampered.write_text(text.replace("~", "~x", 1))
    result = run_parley(
        ["dossier", "verify", str(tampered), "--room", scene.room_id, "--json"],
        env=scene.cast.bob.env,
    )
    assert result.returncode == 1
    assert result.json_error()["code"] == "verification-failed"
    assert result.stdout == ""


def test_read_shows_each_disclosure_in_one_line_and_json_carries_the_records(
    scene: Scene,
) -> None:
    disclosures = [m for m in scene.b_read if m.get("dossier", {}).get("kind") == "disclosure"]
    assert len(disclosures) == 1
    assert disclosures[0]["dossier"]["verified"] is True
    assert len(disclosures[0]["dossier"]["records"]) == 50
    to_mediator = [
        m
        for m in scene.mediator_read
        if m.get("dossier", {}).get("kind") == "disclosure" and m["channel"] == "caucus-a"
    ]
    assert to_mediator[0]["dossier"]["phase"] == "preview for the mediator"
    line = run_parley(["read", scene.room_id], env=scene.cast.bob.env).ok().stdout
    assert (
        "Alice discloses 'Detainees held by A', phase phase 1: 50 records, 2 fields "
        "(name, service_number), verified" in line
    )


def test_side_a_verifies_side_bs_disclosure_in_turn(scene: Scene) -> None:
    assert scene.b_commit["records"] == 120
    show = scene.a_show_b
    assert show["issuer"]["name"] == "Bob"
    assert len(show["records"]) == 20
    assert all(d["verified"] for d in show["disclosures"])


def test_the_issuer_sees_what_was_disclosed_to_whom_and_when(scene: Scene) -> None:
    own = scene.a_show_own
    assert own["role"] == "issuer"
    assert own["records"] == 500
    assert [(d["channel"], d["to"], d["phase"], d["records"]) for d in own["disclosures"]] == [
        ("caucus-a", ["Mona Mediator"], "preview for the mediator", "1-50"),
        ("plenary", ["Mona Mediator", "Bob"], "phase 1", "1-50"),
    ]


def test_the_outsider_verifies_the_excerpt_offline(scene: Scene) -> None:
    report = json.loads(scene.outsider.ok().stdout)
    assert report["verified"] is True
    assert [m["seq"] for m in report["messages"]] == scene.excerpt_seqs
    assert report["messages"][0]["content"]["text"] == "Side A tables its list of detainees."
    assert [(m["sender_name"], m["side"], m["channel"]) for m in report["messages"]] == [
        ("Alice", "a", "plenary"),
        ("Alice", "a", "plenary"),
        ("Bob", "b", "plenary"),
    ]


def test_a_tampered_excerpt_fails_with_the_reason(scene: Scene) -> None:
    data = (scene.workdir / "excerpt.json").read_text()
    sample = json.loads(data)
    sample["messages"][0]["envelope"]["header"]["sent_at"] += 1
    tampered = scene.workdir / "excerpt-tampered.json"
    tampered.write_text(json.dumps(sample))
    nobody = cli_env(PARLEY_HOME=str(scene.workdir / "no-profile"))
    result = run_parley(
        ["excerpt", "verify", str(tampered), "--log-key", scene.log_key], env=nobody
    )
    assert result.returncode == 1
    assert "the excerpt does not verify" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_room_passes_the_audit_online_and_offline(scene: Scene) -> None:
    assert scene.audit["log_id"] == scene.room_id
    assert scene.audit["log_vkey"].split("+")[-1] == scene.log_key.split("+")[-1]
    assert scene.bundle.ok().returncode == 0


def test_a_malformed_record_file_commits_nothing(scene: Scene, tmp_path: Path) -> None:
    alice = scene.cast.alice.env
    before = run_parley(["room", "show", scene.room_id, "--json"], env=alice).json()["last_seq"]
    bad = tmp_path / "bad.json"
    for content, reason in [
        ('{"name": "not a list"}', "a JSON list of objects"),
        ('[{"name": {"deep": {"deeper": 1}}}]', "nest at most one level"),
        ('[{"...": "reserved"}]', "reserved by SD-JWT"),
        ("[" + ",".join(['{"name": "' + "x" * 1000 + '"}'] * 9000) + "]", "larger than"),
    ]:
        bad.write_text(content)
        result = run_parley(
            ["dossier", "commit", scene.room_id, str(bad), "--title", "Bad"], env=alice
        )
        assert result.returncode == 1, result.describe()
        assert reason in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    after = run_parley(["room", "show", scene.room_id, "--json"], env=alice).json()["last_seq"]
    assert after == before


def test_a_disclosure_of_a_missing_record_or_field_sends_nothing(scene: Scene) -> None:
    alice = scene.cast.alice.env
    dossier = scene.a_commit["dossier_id"]
    before = run_parley(["room", "show", scene.room_id, "--json"], env=alice).json()["last_seq"]
    for extra, reason in [
        (["--records", "501"], "the dossier has 500 records"),
        (["--records", "1", "--fields", "blood_type"], "no chosen record has the field"),
    ]:
        result = run_parley(
            [
                "dossier",
                "disclose",
                scene.room_id,
                dossier,
                *extra,
                "--channel",
                "plenary",
                "--json",
            ],
            env=alice,
        )
        assert result.returncode == 1
        assert reason in result.json_error()["message"]
    after = run_parley(["room", "show", scene.room_id, "--json"], env=alice).json()["last_seq"]
    assert after == before


def test_excerpt_and_excerpt_verify_share_the_word(scene: Scene) -> None:
    nobody = cli_env(PARLEY_HOME=str(scene.workdir / "no-profile"))
    usage = run_parley(["excerpt", "verify"], env=nobody)
    assert usage.returncode == 2
    missing = run_parley(["excerpt", scene.room_id, "1"], env=nobody)
    assert missing.returncode == 2  # --out is required


# --- the close of the negotiation: sealed offers, the agreement, receipts -------------


@dataclass(frozen=True, slots=True)
class Closing:
    """What every step of the negotiation's close printed (issue 9's walkthrough)."""

    blind: str
    blind_settle: dict[str, Any]
    blind_b: dict[str, Any]
    blind_mediator: dict[str, Any]
    open_round: str
    open_a: dict[str, Any]
    open_b: dict[str, Any]
    refused: str
    escrow: dict[str, Any]
    refused_a: dict[str, Any]
    agreement_id: str
    early_countersign: CliResult
    agreement: dict[str, Any]
    receipts: list[dict[str, Any]]
    audit: dict[str, Any]
    bundle: CliResult
    agree_verify: dict[str, Any]
    pdf: Path


SITE_QUESTION = "Where the exchange takes place (site number)"
RELEASE_QUESTION = "Detainees released in phase 1 (0-500)"


def _round(result: CliResult) -> dict[str, Any]:
    shown: dict[str, Any] = result.json()
    return shown


@pytest.fixture(scope="module")
def closing(scene: Scene) -> Closing:
    """The mediator runs three sealed-offer rounds (blind, open, and one side B will not
    reveal, with a deadline), then the phase-1 agreement is proposed, signed by both
    sides and countersigned; receipts, the audit and an offline bundle close it."""
    room, cast, work = scene.room_id, scene.cast, scene.workdir
    mediator, alice, bob = cast.mediator.env, cast.alice.env, cast.bob.env

    # The round whose deadline must pass goes first, so the others run meanwhile. Its
    # deadline must leave time for three acts before it (a commit each and side A's
    # reveal) and no more, since the scene waits for it: ten times what one command
    # takes on this machine now, and at least 20 s.
    started = time.monotonic()
    run_parley(["offer", "show", room, "--json"], env=mediator).ok()
    deadline_seconds = max(20, round(10 * (time.monotonic() - started)))
    opened = run_parley(
        [
            "offer",
            "open",
            room,
            "--question",
            "Where the exchange takes place (site number)",
            "--deadline",
            f"{deadline_seconds}s",
            "--json",
        ],
        env=mediator,
    ).json()
    refused = str(opened["round_id"])
    deadline = datetime.fromisoformat(str(opened["deadline"]))
    run_parley(["offer", "commit", room, refused, "3"], env=alice).ok()
    run_parley(["offer", "commit", room, refused, "7"], env=bob).ok()
    run_parley(["offer", "reveal", room, refused], env=alice).ok()  # side B never does

    blind = (
        run_parley(
            [
                "offer",
                "open",
                room,
                "--question",
                "Detainees released in phase 1 (0-500)",
                "--blind",
                "--rule",
                "midpoint",
            ],
            env=mediator,
        )
        .ok()
        .stdout.strip()
    )
    run_parley(["offer", "commit", room, blind, "60", "--note", "our ceiling"], env=alice).ok()
    run_parley(["offer", "commit", room, blind, "45"], env=bob).ok()
    run_parley(["offer", "reveal", room, blind], env=alice).ok()
    run_parley(["offer", "reveal", room, blind], env=bob).ok()
    blind_settle = run_parley(["offer", "settle", room, blind, "--json"], env=mediator).json()
    blind_b = _round(run_parley(["offer", "show", room, blind, "--json"], env=bob))
    blind_mediator = _round(run_parley(["offer", "show", room, blind, "--json"], env=mediator))

    open_round = (
        run_parley(
            ["offer", "open", room, "--question", "Days between phase 1 and phase 2"], env=mediator
        )
        .ok()
        .stdout.strip()
    )
    run_parley(["offer", "commit", room, open_round, "14"], env=alice).ok()
    run_parley(["offer", "commit", room, open_round, "21"], env=bob).ok()
    run_parley(["offer", "reveal", room, open_round], env=alice).ok()
    run_parley(["offer", "reveal", room, open_round], env=bob).ok()
    open_a = _round(run_parley(["offer", "show", room, open_round, "--json"], env=alice))
    open_b = _round(run_parley(["offer", "show", room, open_round, "--json"], env=bob))

    pdf = work / "phase-1-agreement.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 12_000 + b"\n%%EOF\n")  # ~3 MB
    agreement_id = (
        run_parley(
            ["agree", "propose", room, str(pdf), "--title", "Phase 1 exchange"], env=mediator
        )
        .ok()
        .stdout.strip()
    )
    early_countersign = run_parley(["agree", "sign", room, agreement_id], env=mediator)
    run_parley(["agree", "sign", room, agreement_id], env=alice).ok()
    run_parley(["agree", "sign", room, agreement_id], env=bob).ok()
    run_parley(["agree", "sign", room, agreement_id], env=mediator).ok()
    agreement = run_parley(["agree", "show", room, agreement_id, "--json"], env=bob).json()

    # The deadline of the first round has passed by now on any machine that ran the
    # steps above; if not, that wait is the passing of time itself, not an event.
    remaining = (deadline - datetime.now(deadline.tzinfo)).total_seconds()
    if remaining > 0:
        time.sleep(remaining + 1)
    escrow = run_parley(["offer", "open-escrow", room, refused, "b", "--json"], env=mediator).json()
    refused_a = _round(run_parley(["offer", "show", room, refused, "--json"], env=alice))

    receipts = run_parley(["receipts", room, "--json"], env=mediator).json()
    audit = run_parley(["audit", "verify", room, "--json"], env=mediator).json()
    bundle_path = work / "closing.bundle"
    run_parley(["audit", "export", room, "--output", str(bundle_path)], env=mediator).ok()
    nobody = cli_env(PARLEY_HOME=str(work / "no-profile"))
    bundle = run_parley(
        ["audit", "verify", "--bundle", str(bundle_path), "--log-key", scene.log_key], env=nobody
    )
    agree_verify = run_parley(
        [
            "agree",
            "verify",
            str(pdf),
            "--bundle",
            str(bundle_path),
            "--log-key",
            scene.log_key,
            "--json",
        ],
        env=nobody,
    ).json()
    return Closing(
        blind=blind,
        blind_settle=blind_settle,
        blind_b=blind_b,
        blind_mediator=blind_mediator,
        open_round=open_round,
        open_a=open_a,
        open_b=open_b,
        refused=refused,
        escrow=escrow,
        refused_a=refused_a,
        agreement_id=agreement_id,
        early_countersign=early_countersign,
        agreement=agreement,
        receipts=receipts,
        audit=audit,
        bundle=bundle,
        agree_verify=agree_verify,
        pdf=pdf,
    )


def _offers(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(o["side"]): o for o in shown["offers"]}


def test_the_blind_round_ends_with_the_mediators_overlap_announcement(closing: Closing) -> None:
    assert closing.blind_settle["act"] == "offer-settle"
    assert closing.blind_settle["overlap"] is True
    assert closing.blind_settle["midpoint"] == "52.5"
    mediator = closing.blind_mediator
    assert {s: o["value"] for s, o in _offers(mediator).items()} == {"a": "60", "b": "45"}
    assert mediator["settlement"]["checked"] is True
    assert mediator["settlement"]["overlap"] is True


def test_side_b_learns_the_outcome_of_the_blind_round_and_never_side_as_offer(
    closing: Closing,
) -> None:
    seen = closing.blind_b
    assert seen["blind"] is True
    assert seen["settlement"]["overlap"] is True
    assert seen["settlement"]["midpoint"] == "52.5"
    assert _offers(seen)["a"]["value"] is None
    assert _offers(seen)["a"]["commitment"]  # the commitment the announcement names
    assert _offers(seen)["b"]["value"] == "45"  # its own


def test_the_open_round_reveals_both_offers_to_both_sides(closing: Closing) -> None:
    for shown in (closing.open_a, closing.open_b):
        offers = _offers(shown)
        assert {s: o["value"] for s, o in offers.items()} == {"a": "14", "b": "21"}
        assert all(o["revealed_seq"] for o in offers.values())
        assert not any(o["refused"] for o in offers.values())


def test_a_side_that_refuses_to_reveal_is_opened_from_escrow(closing: Closing) -> None:
    assert closing.escrow["act"] == "escrow-open"
    assert closing.escrow["side"] == "b"
    offers = _offers(closing.refused_a)
    assert offers["b"]["value"] == "7"
    assert offers["b"]["revealed_seq"] is None  # the refusal stays visible
    assert offers["b"]["escrow_seq"] == closing.escrow["seq"]
    assert offers["a"]["value"] == "3"
    assert closing.refused_a["closed_seq"] is not None


def test_the_phase_1_agreement_is_signed_by_both_sides_and_countersigned(
    closing: Closing,
) -> None:
    assert closing.early_countersign.returncode == 1
    assert closing.early_countersign.stderr.count("\n") == 1
    agreement = closing.agreement
    assert agreement["complete"] is True
    assert agreement["title"] == "Phase 1 exchange"
    assert agreement["document"]["size"] == closing.pdf.stat().st_size
    assert all(slot["signed"] for slot in agreement["signers"])
    signatures = agreement["signatures"]
    assert [s["name"] for s in signatures][-1] == "Mona Mediator"  # countersigned last
    assert {s["name"] for s in signatures} == {"Mona Mediator", "Alice", "Bob"}
    assert {s["document_sha256"] for s in signatures} == {agreement["document_sha256"]}
    assert closing.agree_verify["ok"] is True
    assert closing.agree_verify["agreement"]["agreement_id"] == closing.agreement_id


def test_receipts_prove_what_side_b_received_and_when(scene: Scene, closing: Closing) -> None:
    bob = scene.cast.bob.account_id
    by_bob = {r["seq"]: r for r in closing.receipts if r["account_id"] == bob}
    phase_1 = _seq(scene.phase_1)
    assert phase_1 in by_bob  # side B's SDK acknowledged the phase-1 disclosure
    assert datetime.fromisoformat(by_bob[phase_1]["server_time"])
    agreement_seq = closing.agreement["seq"]
    assert {r["account_id"] for r in closing.receipts if r["seq"] == agreement_seq} >= {
        bob,
        scene.cast.alice.account_id,
    }


def test_the_whole_negotiation_passes_the_audit_and_an_offline_bundle(closing: Closing) -> None:
    assert closing.audit["entries"]["instrument"] > 20
    assert closing.bundle.returncode == 0, closing.bundle.describe()
