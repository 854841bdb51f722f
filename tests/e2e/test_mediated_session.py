"""A whole mediated session with real `parley` processes against a real server:
open mode, a caucus with each side, shuttle mode, relays both ways, a mute, a
removal with re-keying, lock, close, and a final `parley audit verify` that
passes. The README's mediator walkthrough is this session."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from client_sdk.protocol.encoding import b64d
from tests.e2e.harness import Cast, Deployment, Person
from tests.support.cli import CliResult, run_parley

# The session plays some thirty-five `parley` processes in the first test's set-up, one
# after another as on the parties' machines; on a loaded machine that outlasts 120 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@dataclass
class Played:
    """Every command of the session, by step name, and the room."""

    room_id: str
    steps: dict[str, CliResult]
    bob_device: str
    b_private_seq: int
    recipients: dict[int, list[str]]
    """Each message event's recipient devices, as the server stored the envelope."""


def _seq(result: CliResult) -> int:
    match = re.search(r"#(\d+)", result.ok().stdout)
    assert match, result.describe()
    return int(match.group(1))


@pytest.fixture(scope="module")
def played(shared_deployment: Deployment, cast: Cast) -> Played:
    """Play the session once per backend; tests then check what happened."""
    shared_deployment.ensure_running()
    mona, alice, bob = cast.mediator, cast.alice, cast.bob
    steps: dict[str, CliResult] = {}

    def run(name: str, person: Person, *args: str) -> CliResult:
        steps[name] = run_parley(list(args), env=person.env)
        return steps[name]

    room = str(run("create", mona, "room", "create", "Exchange talks", "--json").json()["room_id"])
    run("add-a", mona, "room", "add", room, alice.account_id, "--side", "a").ok()
    run("add-b", mona, "room", "add", room, bob.account_id, "--side", "b").ok()
    run("open-a1", alice, "send", room, "We propose one for one.").ok()
    run("open-b1", bob, "send", room, "We need three for one.").ok()
    run("caucus-a", mona, "room", "caucus", room, "open", "--side", "a").ok()
    run("caucus-b", mona, "room", "caucus", room, "open", "--side", "b").ok()
    a_private = _seq(
        run("a-private", alice, "send", room, "Two for one is our floor.", "--channel", "caucus-a")
    )
    b_private = _seq(
        run("b-private", bob, "send", room, "We could live with two.", "--channel", "caucus-b")
    )
    run("shuttle", mona, "room", "mode", room, "shuttle").ok()
    run("a-plenary-in-shuttle", alice, "send", room, "Can we talk directly?")
    run(
        "relay-a-to-b",
        mona,
        "relay",
        room,
        str(a_private),
        "--to",
        "caucus-b",
        "--edit",
        "They might move towards two for one.",
    ).ok()
    run("relay-b-to-a", mona, "relay", room, str(b_private), "--to", "caucus-a").ok()
    run("a-relays", alice, "relay", room, str(a_private), "--to", "caucus-a", "--json")
    steps["a-too-long"] = run_parley(
        ["send", room, "-", "--channel", "caucus-a"], env=alice.env, stdin="x" * 600_000
    )
    run("mute-b", mona, "room", "mute", room, bob.account_id).ok()
    run("b-muted", bob, "send", room, "Objection!", "--channel", "caucus-b")
    run("unmute-b", mona, "room", "unmute", room, bob.account_id).ok()
    bob_device = str(run("bob-whoami", bob, "whoami", "--json").json()["device_id"])
    run("b-reads-before-removal", bob, "read", room, "--json").ok()
    run("remove-b", mona, "room", "remove", room, bob.account_id).ok()
    run("after-removal", mona, "send", room, "Bob's side has left the talks.").ok()
    run("b-reads-after-removal", bob, "read", room, "--json")
    run("b-sends-after-removal", bob, "send", room, "Are we still talking?")
    run("lock", mona, "room", "lock", room).ok()
    run("a-locked", alice, "send", room, "Hello?", "--channel", "caucus-a")
    run("unlock", mona, "room", "unlock", room).ok()
    run("close", mona, "room", "close", room, "--json").ok()
    run("a-closed", alice, "send", room, "One more thing", "--channel", "caucus-a")
    run("a-closed-json", alice, "send", room, "One more thing", "--json")
    run("a-closed-relay", alice, "relay", room, str(a_private), "--to", "caucus-b")
    run("mona-reads-text", mona, "read", room).ok()
    run("mona-reads-grep", mona, "read", room, "--grep", "TWO for one|bob").ok()
    run("mona-reads-caucus-a", mona, "read", room, "--channel", "caucus-a").ok()
    run("mona-reads-main", mona, "read", room, "--channel", "main").ok()
    run("mona-reads-since-1d", mona, "read", room, "--since", "1d").ok()
    run("mona-reads-future", mona, "read", room, "--since", "2999-01-01").ok()
    run("mona-reads-bad-since", mona, "read", room, "--since", "last week", "--json")
    run("a-reads", alice, "read", room, "--json").ok()
    run("mona-reads", mona, "read", room, "--json").ok()
    run("mona-show", mona, "room", "show", room, "--json").ok()
    run("audit", mona, "audit", "verify", room)
    token = run("token", mona, "auth", "token").ok().stdout.strip()
    page = httpx.get(
        f"{shared_deployment.url}/v1/rooms/{room}/events",
        params={"limit": 500},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    recipients = {
        int(e["seq"]): list(e["payload"]["header"]["recipients"])
        for e in page["events"]
        if e["kind"] == "message"
    }
    return Played(room, steps, bob_device, b_private, recipients)


def _texts(result: CliResult, channel: str | None = None) -> list[str]:
    return [m["text"] for m in result.json_lines() if channel is None or m["channel"] == channel]


def test_open_mode_lets_both_parties_speak_in_plenary(played: Played) -> None:
    assert _texts(played.steps["mona-reads"], "plenary")[:2] == [
        "We propose one for one.",
        "We need three for one.",
    ]


def test_each_caucus_is_read_by_the_mediator_and_its_side_only(played: Played) -> None:
    mona = _texts(played.steps["mona-reads"])
    alice = _texts(played.steps["a-reads"])
    bob_before = _texts(played.steps["b-reads-before-removal"])

    assert "Two for one is our floor." in mona
    assert "We could live with two." in mona
    assert "Two for one is our floor." in alice
    assert "Two for one is our floor." not in bob_before
    assert "We could live with two." in bob_before


def test_shuttle_mode_refuses_a_party_in_plenary(played: Played) -> None:
    refused = played.steps["a-plenary-in-shuttle"]

    assert refused.returncode == 1
    assert "shuttle" in refused.stderr


def test_relays_carry_their_original_and_say_if_edited(played: Played) -> None:
    to_bob = [
        m for m in played.steps["b-reads-before-removal"].json_lines() if m["relay"] is not None
    ]
    to_alice = [m for m in played.steps["a-reads"].json_lines() if m["relay"] is not None]

    assert [(m["text"], m["relay"]["edited"], m["relay"]["checked"]) for m in to_bob] == [
        ("They might move towards two for one.", True, False)
    ]
    assert [
        (m["text"], m["relay"]["edited"], m["relay"]["original_sender_name"]) for m in to_alice
    ] == [("We could live with two.", False, "Bob")]


def test_a_muted_member_is_refused_until_unmuted(played: Played) -> None:
    muted = played.steps["b-muted"]

    assert muted.returncode == 1
    assert "muted" in muted.stderr


def test_a_removed_member_reads_nothing_sent_afterwards(played: Played) -> None:
    after = played.steps["b-reads-after-removal"]
    envelope = next(
        m
        for m in played.steps["mona-reads"].json_lines()
        if m["text"] == "Bob's side has left the talks."
    )

    assert after.returncode == 1
    error = after.json_error()  # --json: the error as JSON, on stderr
    assert error["code"] == "removed"
    assert error["message"].startswith(f"you were removed from room {played.room_id}")
    assert after.stdout == ""
    assert envelope["seq"] > max(
        m["seq"] for m in played.steps["b-reads-before-removal"].json_lines()
    )
    assert played.bob_device not in played.steps["mona-show"].json()["members"].__repr__()


def test_lock_then_close_refuse_messages_and_close_reports_a_final_checkpoint(
    played: Played,
) -> None:
    closed = played.steps["close"].json()

    assert "locked" in played.steps["a-locked"].stderr
    assert "closed" in played.steps["a-closed"].stderr
    assert closed["status"] == "closed"
    origin, size, root = closed["checkpoint"].split("\n")[:3]
    assert origin.endswith(f"/rooms/{played.room_id}")
    assert int(size) == closed["seq"]
    assert len(b64d(root.replace("+", "-").replace("/", "_").rstrip("="))) == 32


def test_the_room_state_shown_is_replayed_from_the_log(played: Played) -> None:
    shown = played.steps["mona-show"].json()

    assert shown["status"] == "closed"
    assert shown["mode"] == "shuttle"
    assert shown["caucuses"] == ["caucus-a", "caucus-b"]
    assert shown["state_verified"] is True


def test_the_final_audit_passes(played: Played) -> None:
    audit = played.steps["audit"]

    assert audit.returncode == 0, audit.describe()


def test_a_removed_member_who_sends_is_told_they_were_removed(played: Played) -> None:
    sent = played.steps["b-sends-after-removal"]

    assert sent.returncode == 1, sent.describe()
    assert sent.stderr.startswith(f"error: you were removed from room {played.room_id}")
    assert "no such room" not in sent.stderr
    assert sent.stderr.count("\n") == 1


def test_a_party_who_relays_is_told_only_mediators_relay_even_in_a_closed_room(
    played: Played,
) -> None:
    relayed = played.steps["a-relays"]
    after_close = played.steps["a-closed-relay"]

    assert relayed.returncode == 1, relayed.describe()
    assert relayed.json_error() == {
        "code": "wrong-side",
        "message": "only mediators relay messages; you are a party",
    }
    assert after_close.returncode == 1
    assert after_close.stderr == "error: only mediators relay messages; you are a party\n"


def test_a_send_to_a_closed_room_says_the_room_is_closed(played: Played) -> None:
    closed = played.steps["a-closed-json"]

    assert closed.returncode == 1
    error = closed.json_error()
    assert error["code"] == "conflict"
    assert error["message"].startswith("the room is closed")


def test_a_message_over_the_size_limit_is_one_line_not_a_traceback(played: Played) -> None:
    too_long = played.steps["a-too-long"]

    assert too_long.returncode == 1, too_long.describe()
    assert too_long.stderr.count("\n") == 1
    assert "Traceback" not in too_long.stderr
    assert "the message is 600000 bytes, over the 524288 a message holds" in too_long.stderr
    assert "--file" in too_long.stderr


def _lines(result: CliResult) -> list[str]:
    return [line for line in result.stdout.splitlines() if not line.startswith(" ")]


def test_read_shows_channel_sender_and_each_moderation_act_on_its_own_line(
    played: Played, cast: Cast
) -> None:
    lines = _lines(played.steps["mona-reads-text"])
    mona = f"[mediator · {cast.mediator.account_id[:6]}] {cast.mediator.name}"
    bob = f"[party b · {cast.bob.account_id[:6]}] Bob"
    alice = f"[party a · {cast.alice.account_id[:6]}] Alice"
    clock = r"#\d+ \d\d:\d\d:\d\d"  # today: the time alone

    def shown(rest: str) -> bool:
        return any(re.fullmatch(rf"{clock} {re.escape(rest)}", line) for line in lines)

    assert shown(f"plenary {alice}: We propose one for one."), lines
    assert shown(f"caucus-a {alice}: Two for one is our floor.")
    assert shown(f"caucus-a * {mona} opened caucus-a")
    assert shown(f"room * {mona} set the mode to shuttle")
    assert shown(f"room * {mona} muted {bob}")
    assert shown(f"room * {mona} unmuted {bob}")
    assert shown(f"room * {mona} removed {bob}")
    assert shown(f"room * {mona} locked the room")
    assert shown(f"room * {mona} closed the room")
    relayed = [line for line in lines if "(relaying #" in line]
    assert len(relayed) == 2
    assert all(f"{mona}: (relaying #" in line for line in relayed)


def test_read_filters_by_grep_channel_and_since(played: Played) -> None:
    grep = _lines(played.steps["mona-reads-grep"])
    caucus_a = _lines(played.steps["mona-reads-caucus-a"])
    main = _lines(played.steps["mona-reads-main"])
    everything = _lines(played.steps["mona-reads-text"])

    assert grep
    assert all(re.search("two for one|bob", line, re.IGNORECASE) for line in grep)
    assert any("Two for one is our floor." in line for line in grep)
    assert any("muted [party b" in line for line in grep)
    assert {line.split()[2] for line in caucus_a} == {"caucus-a", "room"}
    assert {line.split()[2] for line in main} == {"plenary", "room"}
    assert _lines(played.steps["mona-reads-since-1d"]) == everything
    assert played.steps["mona-reads-future"].stdout == ""
    bad = played.steps["mona-reads-bad-since"]
    assert bad.returncode == 2
    assert bad.json_error()["code"] == "usage"
