"""`parley agree ...` against a real server (docs/design.md §7): a PDF of a few MB
proposed, signed by both sides, countersigned by the mediator, shown complete; a
bundle exported, and `parley agree verify` checking it offline with no profile: it
passes for the signed file and fails for a changed one or an unfinished agreement."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from client_sdk.audit import export_log, verify_log, write_bundle
from tests.e2e.conftest import Negotiation
from tests.e2e.harness import Cast
from tests.support.cli import CliResult, cli_env, run_parley

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _pdf(path: Path, size: int) -> Path:
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + os.urandom(size) + b"\n%%EOF\n")
    return path


def _one_line_error(result: CliResult, *, code: int = 1) -> str:
    assert result.returncode == code, result.describe()
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.describe()
    return result.stderr


async def test_a_signed_agreement_from_proposal_to_offline_verification(
    negotiation: Negotiation, cast: Cast, tmp_path: Path
) -> None:
    room = negotiation.room_id
    mediator, alice, bob = cast.mediator.env, cast.alice.env, cast.bob.env
    text = _pdf(tmp_path / "phase-1.pdf", 3 * 1024 * 1024)

    agreement_id = (
        run_parley(["agree", "propose", room, str(text), "--title", "Phase 1"], env=mediator)
        .ok()
        .stdout.strip()
    )
    early = run_parley(["agree", "sign", room, agreement_id], env=mediator)
    signed_a = run_parley(
        ["agree", "sign", room, agreement_id, "-o", str(tmp_path / "alice.pdf")], env=alice
    ).ok()
    signed_b = run_parley(["agree", "sign", room, agreement_id, "--json"], env=bob).json()
    countersigned = run_parley(["agree", "sign", room, agreement_id], env=mediator).ok()
    shown = run_parley(["agree", "show", room, agreement_id, "--json"], env=alice).json()
    listed = run_parley(["agree", "show", room], env=bob).ok()
    read = run_parley(["read", room, "--json"], env=bob).json_lines()
    log_key = (await verify_log(negotiation.mediator, room)).log_vkey  # given out of band
    bundle = tmp_path / "room.parley-bundle"  # the tiled format, export's default
    run_parley(["audit", "export", room, "--output", str(bundle)], env=mediator).ok()

    nobody = cli_env(PARLEY_HOME=str(tmp_path / "no-profile"))  # an outsider, offline
    verified = run_parley(
        ["agree", "verify", str(text), "--bundle", str(bundle), "--log-key", log_key, "--json"],
        env=nobody,
    ).json()
    changed = tmp_path / "phase-1-changed.pdf"
    changed.write_bytes(text.read_bytes().replace(b"%%EOF", b"%%EOX"))
    refused = run_parley(["agree", "verify", str(changed), "--bundle", str(bundle)], env=nobody)

    assert "countersigns last" in _one_line_error(early)
    assert (tmp_path / "alice.pdf").read_bytes() == text.read_bytes()
    assert "waiting for side b, side mediator" in signed_a.stdout
    assert not signed_b["complete"]
    assert "complete" in countersigned.stdout
    assert shown["complete"] is True
    assert shown["title"] == "Phase 1"
    assert shown["document"]["size"] == text.stat().st_size
    assert [(s["name"], s["side"]) for s in shown["signatures"]] == [
        ("Alice", "a"),
        ("Bob", "b"),
        (cast.mediator.name, "mediator"),
    ]
    assert {s["document_sha256"] for s in shown["signatures"]} == {shown["document_sha256"]}
    assert '"Phase 1"' in listed.stdout
    assert "complete     yes" in listed.stdout
    proposal = next(m for m in read if (m["agreement"] or {}).get("act") == "agreement-propose")
    assert proposal["agreement"]["agreement_id"] == agreement_id
    assert proposal["agreement"]["title"] == "Phase 1"
    signing = [m for m in read if (m["agreement"] or {}).get("act") == "agreement-sign"]
    assert len(signing) == 3

    assert verified["ok"] is True
    assert verified["complete"] is True
    assert verified["log_key_pinned"] is True
    assert verified["agreement"]["agreement_id"] == agreement_id
    assert verified["agreement"]["title"] is None  # sealed: an outsider cannot read it
    assert [s["name"] for s in verified["agreement"]["signatures"]] == [
        "Alice",
        "Bob",
        cast.mediator.name,
    ]
    assert "names this file" in _one_line_error(refused)


async def test_an_unfinished_agreement_does_not_verify_and_bad_input_is_one_line(
    negotiation: Negotiation, cast: Cast, tmp_path: Path
) -> None:
    room = negotiation.room_id
    text = _pdf(tmp_path / "draft.pdf", 1024)
    proposed = await negotiation.alice.agreements.propose(room, text, title="Draft")
    agreement_id = proposed.agreement_id
    await negotiation.alice.agreements.sign(room, agreement_id)
    bundle = tmp_path / "bundle.json"
    write_bundle(await export_log(negotiation.mediator, room), bundle)
    nobody = cli_env(PARLEY_HOME=str(tmp_path / "no-profile"))

    unfinished = run_parley(
        ["agree", "verify", str(text), "--bundle", str(bundle), "--json"], env=nobody
    )
    twice = run_parley(["agree", "sign", room, agreement_id], env=cast.alice.env)
    unknown = run_parley(["agree", "show", room, "no-such-agreement", "--json"], env=cast.bob.env)
    missing = run_parley(
        ["agree", "propose", room, str(tmp_path / "missing.pdf"), "--title", "X"],
        env=cast.bob.env,
    )
    no_bundle = run_parley(
        ["agree", "verify", str(text), "--bundle", str(tmp_path / "nope.json")], env=nobody
    )

    assert unfinished.returncode == 1
    report = json.loads(unfinished.stdout)
    assert report["verified"] is True
    assert report["complete"] is False
    assert report["reason"] == "not complete: waiting for side b, side mediator"
    assert "already signed" in _one_line_error(twice)
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert unknown.json_error() == {
        "code": "not_found",
        "message": "there is no agreement no-such-agreement in this room (404 not_found)",
    }
    assert "cannot read" in _one_line_error(missing, code=2)
    assert "cannot read" in _one_line_error(no_bundle, code=2)
    shown = await negotiation.bob.agreements.show(room, agreement_id)
    assert [s.name for s in shown.signatures] == ["Alice"]
