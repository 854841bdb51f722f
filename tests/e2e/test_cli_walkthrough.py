"""The README walkthrough, each step a real `parley` process with its own profile
against a real `parley serve`: enroll, create a room, add the parties, send,
read, inspect, and compare safety numbers.

The session is played once per backend, in three acts (module fixtures: the
mediator sets up and Alice talks; everyone looks; Alice and Bob verify each
other), steps that do not depend on each other at the same time, as on
several people's machines. Each test then checks one behaviour of what happened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import pytest

from tests.e2e.harness import Cast, Deployment
from tests.support.cli import CliResult, run_parallel, run_parley

pytestmark = pytest.mark.slow

TITLE = "Exchange talks"
FIRST_TEXT = "We propose a one-for-one exchange."
SECOND_TEXT = "Names follow on the list.\n  Indented — and ünïcode: 交换.\n\n"
"""Sent through stdin: every byte of it, trailing newlines included, must arrive."""


@dataclass(frozen=True, slots=True)
class Setup:
    """Act one: the mediator creates the room and adds the parties; Alice sends twice."""

    room_id: str
    create: CliResult
    adds: tuple[CliResult, CliResult]
    sends: tuple[CliResult, CliResult]
    """`parley send ROOM TEXT`, then `parley send ROOM -` with the text on stdin."""

    @property
    def sent_seqs(self) -> list[int]:
        """The sequence numbers `parley send` reported."""
        seqs = []
        for result in self.sends:
            match = re.fullmatch(r"sent as #(\d+)\n", result.ok().stdout)
            assert match, result.describe()
            seqs.append(int(match.group(1)))
        return seqs


@dataclass(frozen=True, slots=True)
class Looks:
    """Act two: everyone runs read-only commands, all at once."""

    whoami: tuple[CliResult, ...]
    """`parley whoami --json` of the mediator, Alice and Bob."""
    reads: tuple[CliResult, CliResult]
    """`parley read --json` of Bob and of the mediator."""
    lists: tuple[CliResult, CliResult]
    """`parley room list` of Bob and of the outsider."""
    outsider_read: CliResult
    party_create: CliResult
    """Alice trying `parley room create`."""
    fingerprints: tuple[CliResult, CliResult]
    """`parley fingerprint` of Alice (for Bob) and of Bob (for Alice)."""


@dataclass(frozen=True, slots=True)
class Verification:
    """Act three: Alice and Bob verify each other, and Bob looks at the room again."""

    wrong: CliResult
    """Alice verifying Bob with the safety number off by one digit."""
    right: CliResult
    """Bob verifying Alice with the number they both printed."""
    show: CliResult
    """Bob's `parley room show --json`, after he verified Alice."""


@pytest.fixture(scope="module")
def setup(shared_deployment: Deployment, cast: Cast) -> Setup:
    """Act one (each step depends on the one before)."""
    shared_deployment.ensure_running()
    mediator, alice = cast.mediator.env, cast.alice.env
    create = run_parley(["room", "create", TITLE], env=mediator).ok()
    room = create.stdout.strip()
    adds = (
        run_parley(["room", "add", room, cast.alice.account_id, "--side", "a"], env=mediator),
        run_parley(["room", "add", room, cast.bob.account_id, "--side", "b"], env=mediator),
    )
    sends = (
        run_parley(["send", room, FIRST_TEXT], env=alice),
        run_parley(["send", room, "-"], env=alice, stdin=SECOND_TEXT),
    )
    return Setup(room, create, adds, sends)


@pytest.fixture(scope="module")
def looks(setup: Setup, cast: Cast) -> Looks:
    """Act two."""
    mediator, alice, bob, outsider = (p.env for p in cast.everyone)
    room = setup.room_id
    results = run_parallel(
        [
            (["whoami", "--json"], mediator),
            (["whoami", "--json"], alice),
            (["whoami", "--json"], bob),
            (["read", room, "--json"], bob),
            (["read", room, "--json"], mediator),
            (["room", "list"], bob),
            (["room", "list"], outsider),
            (["read", room, "--json"], outsider),
            (["room", "create", "A room of my own"], alice),
            (["fingerprint", cast.bob.account_id], alice),
            (["fingerprint", cast.alice.account_id], bob),
        ]
    )
    return Looks(
        whoami=tuple(results[0:3]),
        reads=(results[3], results[4]),
        lists=(results[5], results[6]),
        outsider_read=results[7],
        party_create=results[8],
        fingerprints=(results[9], results[10]),
    )


def _off_by_one_digit(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


@pytest.fixture(scope="module")
def verification(setup: Setup, looks: Looks, cast: Cast) -> Verification:
    """Act three, after act two (each profile runs one command at a time)."""
    number = looks.fingerprints[0].ok().stdout.strip()
    wrong, right = run_parallel(
        [
            (["verify", cast.bob.account_id, _off_by_one_digit(number)], cast.alice.env),
            (["verify", cast.alice.account_id, number], cast.bob.env),
        ]
    )
    show = run_parley(["room", "show", setup.room_id, "--json"], env=cast.bob.env)
    return Verification(wrong, right, show)


def test_admin_enroll_prints_the_token_alone_on_stdout(cast: Cast) -> None:
    for person in cast.everyone:
        assert person.admin_stdout == f"{person.token}\n"
        assert len(person.token) >= 32


def test_whoami_shows_each_enrolled_profile(
    looks: Looks, cast: Cast, deployment: Deployment
) -> None:
    people = (cast.mediator, cast.alice, cast.bob)
    for person, result in zip(people, looks.whoami, strict=True):
        me = result.json()
        assert me["account_id"] == person.account_id
        assert me["name"] == person.name
        assert me["role"] == person.role.value
        assert me["server"] == deployment.url
        assert me["device_id"]
        assert re.fullmatch(r"[0-9 ]+", me["fingerprint"])
    assert len({p.account_id for p in cast.everyone}) == 4


def test_room_create_prints_the_room_id_alone(setup: Setup) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}\n", setup.create.stdout)


def test_each_room_add_makes_a_new_roster_version(setup: Setup) -> None:
    assert [r.ok().stdout for r in setup.adds] == [
        "Roster version 2: 2 members.\n",
        "Roster version 3: 3 members.\n",
    ]


def test_send_reports_consecutive_sequence_numbers(setup: Setup) -> None:
    first, second = setup.sent_seqs
    assert second == first + 1


def test_the_other_party_and_the_mediator_read_the_exact_texts(
    setup: Setup, looks: Looks, cast: Cast
) -> None:
    for result in looks.reads:
        messages = result.json_lines()
        assert [
            (m["seq"], m["sender_account_id"], m["sender_name"], m["channel"], m["text"])
            for m in messages
        ] == [
            (setup.sent_seqs[0], cast.alice.account_id, "Alice", "plenary", FIRST_TEXT),
            (setup.sent_seqs[1], cast.alice.account_id, "Alice", "plenary", SECOND_TEXT),
        ]
        sent_at = [datetime.fromisoformat(m["sent_at"]) for m in messages]
        assert all(t.tzinfo is not None for t in sent_at)
        assert sent_at == sorted(sent_at)


def test_room_show_gives_the_verified_roster_and_the_callers_side(
    setup: Setup, verification: Verification, cast: Cast
) -> None:
    room = verification.show.json()

    assert room["room_id"] == setup.room_id
    assert room["title"] == TITLE
    assert room["side"] == "b"
    assert room["status"] == "open"
    assert room["roster_version"] == 3
    assert room["last_seq"] == setup.sent_seqs[1]
    assert [(m["account_id"], m["name"], m["side"]) for m in room["members"]] == [
        (cast.mediator.account_id, "Mona Mediator", "mediator"),
        (cast.alice.account_id, "Alice", "a"),
        (cast.bob.account_id, "Bob", "b"),
    ]
    assert all(len(m["device_ids"]) == 1 for m in room["members"])


def test_room_list_shows_the_room_to_members_only(setup: Setup, looks: Looks) -> None:
    member, outsider = looks.lists

    line = next(ln for ln in member.ok().stdout.splitlines() if setup.room_id in ln)
    assert line.split() == [setup.room_id, "open", *TITLE.split()]
    assert setup.room_id not in outsider.ok().stdout


def test_a_non_member_cannot_read_the_room(looks: Looks) -> None:
    result = looks.outsider_read

    assert result.returncode != 0, result.describe()
    assert result.json_error()["message"].startswith("no such room")  # --json: JSON
    assert result.stdout == ""


def test_a_party_cannot_create_a_room(looks: Looks) -> None:
    result = looks.party_create

    assert result.returncode != 0, result.describe()
    assert result.stdout == ""
    assert "error: only mediators may create rooms" in result.stderr
    assert "Traceback" not in result.stderr


def test_both_sides_print_the_same_safety_number(looks: Looks) -> None:
    alices, bobs = (r.ok().stdout for r in looks.fingerprints)

    assert alices == bobs
    assert re.fullmatch(r"\d{5}( \d{5}){11}\n", alices)


def test_verify_accepts_the_shared_safety_number(verification: Verification) -> None:
    verification.right.ok()
    verified = {m["name"]: m["verified"] for m in verification.show.json()["members"]}

    assert verified == {"Mona Mediator": False, "Alice": True, "Bob": True}


def test_verify_refuses_a_wrong_safety_number(verification: Verification) -> None:
    result = verification.wrong

    assert result.returncode != 0, result.describe()
    assert "does not match" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
