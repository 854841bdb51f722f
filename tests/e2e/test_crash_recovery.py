"""Crash consistency (docs/design.md §1.6, §8): a real server, on SQLite and on
PostgreSQL, killed with SIGKILL at random moments while clients use it, then
restarted on the same port and database.

After every kill, while the server is down, what it left at rest is checked
(`at_rest`: logs, checkpoints, rooms, rosters, directory, blobs). After every
restart, every checkpoint a client verified before the kill is proven
consistent with the log. Then, per scenario: every acknowledged send is in
the room exactly once with no gap, a send whose answer was lost is sent again
under its message id and lands once, followers (the SDK's and `parley read
--follow`) go on without loss or repeat, and a key rotation, a roster change
or a document upload cut by the kill is whole or absent, and can be finished.

The kill moments come from a seeded generator (`crash.CrashPlan`): each test
prints its seed; ``PARLEY_CRASH_SEED=N`` reruns it, ``PARLEY_CRASH_ROUNDS=N``
makes N kills per scenario (the long run: 50).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from client_sdk.client import ParleyClient
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.models import Side
from tests.conftest import PASSPHRASE
from tests.e2e.conftest import Negotiation, OpenClient
from tests.e2e.crash import (
    ARRIVAL_TIMEOUT,
    AnswerLost,
    Checkpoints,
    Crasher,
    CrashPlan,
    Follower,
    Sends,
    moment_reached,
)
from tests.e2e.harness import Cast, Deployment
from tests.support.cli import CliProcess

pytestmark = pytest.mark.slow

CHUNK = 4096
"""Document chunk size in the upload scenario: many chunks, so a kill lands mid-way."""


async def test_sends_from_three_clients_survive_sigkills_at_random_moments(
    deployment: Deployment,
    cast: Cast,
    negotiation: Negotiation,
    open_client: OpenClient,
    tmp_path: Path,
) -> None:
    plan = CrashPlan.for_scenario("sends", rounds=3)
    crasher, checkpoints = Crasher(deployment, plan.rounds), Checkpoints()
    room, mediator = negotiation.room_id, negotiation.mediator
    writers = {"Mona": mediator, "Alice": negotiation.alice, "Bob": negotiation.bob}
    sends = Sends(crasher, room)
    cli = CliProcess(
        ["read", room, "--follow", "--json"], env=cast.alice.env, stderr_path=tmp_path / "err"
    )
    follower = Follower(open_client(cast.bob), room)
    in_flight_at_kill: list[tuple[set[str], int]] = []
    try:
        async with follower.running():
            # Both followers past their first read: from now on they follow the stream.
            opening = await mediator.send(room, "opening")
            await follower.reached(opening.seq)
            assert (await cli.next_json(ARRIVAL_TIMEOUT))["seq"] == opening.seq
            async with sends.sending(writers):
                for _ in range(plan.rounds):
                    await sends.more(plan.rng.randint(3, 15))
                    await plan.moment(0.05)
                    in_flight = set(sends.in_flight)
                    at_rest = await crasher.crash_and_restart()
                    in_flight_at_kill.append((in_flight, at_rest.log_sizes[room]))
                    await checkpoints.prove(room, mediator, [*writers.values(), follower.client])
                await sends.more(3)
            # Every message attempted was acknowledged once, where its receipt says.
            assert set(sends.acknowledged) == set(sends.texts)
            read = [m async for m in mediator.messages(room, after=opening.seq)]
            assert [(m.seq, m.message_id) for m in read] == sorted(
                (r.seq, r.message_id) for r in sends.acknowledged.values()
            )
            assert [m.seq for m in read] == list(
                range(opening.seq + 1, opening.seq + 1 + len(read))
            )
            assert {m.message_id: (m.sender_name.split()[0], m.text) for m in read} == sends.texts
            # Both followers showed exactly that, in order, across every kill.
            await follower.reached(read[-1].seq)
            assert [(m.seq, m.message_id) for m in follower.seen[1:]] == [
                (m.seq, m.message_id) for m in read
            ]
        printed = [await cli.next_json(ARRIVAL_TIMEOUT) for _ in read]
        assert [(p["seq"], p["message_id"], p["text"]) for p in printed] == [
            (m.seq, m.message_id, m.text) for m in read
        ]
        await checkpoints.prove(room, mediator, [*writers.values(), follower.client])
    finally:
        cli.stop()
    landed = sum(
        1
        for in_flight, size in in_flight_at_kill
        for message_id in in_flight
        if sends.acknowledged[message_id].leaf_index < size
    )
    print(
        f"{crasher.kills} kills; {len(read)} messages acknowledged; {len(sends.answers_lost)} "
        f"answers lost and the message sent again; {landed} in flight at a kill had landed "
        "before it (answered from the log on the retry)"
    )


async def test_a_send_retried_after_a_lost_reply_gets_the_original_receipt(
    deployment: Deployment, negotiation: Negotiation
) -> None:
    room, message_id = negotiation.room_id, uuid.uuid4().hex
    first = await negotiation.alice.send(room, "offer", message_id=message_id)

    # The app never saw that reply (say the server died right after committing), so it
    # sends the same message again under the same id.
    retried = await negotiation.alice.send(room, "offer", message_id=message_id)

    assert retried == first
    read = [(m.seq, m.text) async for m in negotiation.bob.messages(room)]
    assert read == [(first.seq, "offer")]


async def test_a_follower_that_loses_an_answer_while_checking_a_roster_change_keeps_following(
    negotiation: Negotiation, cast: Cast
) -> None:
    room, alice = negotiation.room_id, negotiation.alice
    lossy = AnswerLost(lambda r: r.method == "GET" and r.url.path.startswith("/v1/accounts/"))
    bob = ParleyClient.open(cast.bob.home, PASSPHRASE, transport=lossy)
    follower = Follower(bob, room)
    try:
        async with follower.running():
            hello = await alice.send(room, "before the change")
            await follower.reached(hello.seq)  # streaming now: what comes next is a batch
            lossy.arm()
            # Checking the new roster asks the directory for its signer: that answer is lost.
            await negotiation.mediator.add_member(room, cast.outsider.account_id, Side.OBSERVER)
            after = await alice.send(room, "after the change")
            await follower.reached(after.seq)
    finally:
        await bob.aclose()

    assert [(m.seq, m.text) for m in follower.seen] == [
        (hello.seq, "before the change"),
        (after.seq, "after the change"),
    ]
    assert lossy.lost == [f"GET /v1/accounts/{cast.mediator.account_id}"]


async def test_a_follower_that_loses_an_answer_while_catching_up_keeps_following(
    negotiation: Negotiation, cast: Cast
) -> None:
    room, alice = negotiation.room_id, negotiation.alice
    earlier = await alice.send(room, "before the follower started")
    lossy = AnswerLost(lambda r: r.method == "GET" and r.url.path == f"/v1/rooms/{room}/events")
    lossy.arm()  # the follower's first page of history is lost
    bob = ParleyClient.open(cast.bob.home, PASSPHRASE, transport=lossy)
    follower = Follower(bob, room)
    try:
        async with follower.running():
            await follower.reached(earlier.seq)
            after = await alice.send(room, "after it started")
            await follower.reached(after.seq)
    finally:
        await bob.aclose()

    assert [(m.seq, m.text) for m in follower.seen] == [
        (earlier.seq, "before the follower started"),
        (after.seq, "after it started"),
    ]
    assert lossy.lost == [f"GET /v1/rooms/{room}/events"]


async def test_a_key_rotation_cut_by_a_sigkill_is_in_the_directory_whole_or_not_at_all(
    deployment: Deployment, negotiation: Negotiation
) -> None:
    plan = CrashPlan.for_scenario("key rotation", rounds=2)
    crasher, checkpoints = Crasher(deployment, plan.rounds), Checkpoints()
    room, alice, bob = negotiation.room_id, negotiation.alice, negotiation.bob
    me, device = alice.whoami()["account_id"], alice.whoami()["device_id"]
    started = time.monotonic()
    await alice.rotate_encryption_key()
    window = time.monotonic() - started
    outcomes: Counter[str] = Counter()
    for round_ in range(plan.rounds):
        rotation = crasher.during(alice.rotate_encryption_key())
        await plan.moment(window)
        await crasher.crash_and_restart()
        answered = await rotation
        staged = max(alice.keystore.state.encryption_keys, key=lambda r: r.created_at)
        current = (await bob.account(me)).devices[device].encryption_key_id
        # Whole or not at all: the key the kill cut off is the device's key, or unknown.
        if answered is not None:
            assert current == answered == staged.key_id
            outcomes["answered"] += 1
        elif current == staged.key_id:
            outcomes["logged, answer lost"] += 1
        else:
            outcomes["not logged"] += 1
            await crasher.retried(alice.rotate_encryption_key)
        # Sealed to whichever key the directory shows, read by Alice.
        sent = await bob.send(room, f"after rotation {round_}")
        read = [m.text async for m in alice.messages(room, after=sent.seq - 1)]
        assert read == [f"after rotation {round_}"]
        await checkpoints.prove(DIRECTORY_LOG_ID, bob, [alice, bob])
    print(f"{crasher.kills} kills during key rotations: {dict(outcomes)}")


async def test_a_roster_change_cut_by_a_sigkill_is_in_the_log_whole_or_not_at_all(
    deployment: Deployment, cast: Cast, negotiation: Negotiation, open_client: OpenClient
) -> None:
    plan = CrashPlan.for_scenario("roster change", rounds=2)
    crasher, checkpoints = Crasher(deployment, plan.rounds), Checkpoints()
    room, mediator, alice = negotiation.room_id, negotiation.mediator, negotiation.alice
    olga = cast.outsider.account_id
    follower = Follower(open_client(cast.bob), room)
    outcomes: Counter[str] = Counter()
    async with follower.running():
        started = time.monotonic()
        await mediator.add_member(room, olga, Side.OBSERVER)
        window = time.monotonic() - started
        for round_ in range(plan.rounds):
            before = await mediator.room(room)
            joining = all(m.account_id != olga for m in before.members)

            change = (
                functools.partial(mediator.add_member, room, olga, Side.OBSERVER)
                if joining
                else functools.partial(mediator.remove_member, room, olga)
            )
            changing = crasher.during(change())
            await plan.moment(window)
            await crasher.crash_and_restart()
            answered = await changing
            after = await mediator.room(room)  # the chain as the log has it, verified
            assert after.roster_version in (before.roster_version, before.roster_version + 1)
            applied = after.roster_version == before.roster_version + 1
            assert applied or answered is None
            assert any(m.account_id == olga for m in after.members) == (joining == applied)
            outcomes[
                "answered" if answered else "logged, answer lost" if applied else "not logged"
            ] += 1
            if not applied:
                await crasher.retried(change)
            sent = await alice.send(room, f"after roster change {round_}")
            await follower.reached(sent.seq)
            assert follower.seen[-1].text == f"after roster change {round_}"
            await checkpoints.prove(room, mediator, [mediator, alice, follower.client])
    print(f"{crasher.kills} kills during roster changes: {dict(outcomes)}")


async def test_a_document_upload_cut_by_a_sigkill_resumes_and_is_never_half_visible(
    deployment: Deployment,
    cast: Cast,
    negotiation: Negotiation,
    open_client: OpenClient,
    tmp_path: Path,
) -> None:
    plan = CrashPlan.for_scenario("document upload", rounds=2)
    crasher = Crasher(deployment, plan.rounds)
    room, alice = negotiation.room_id, negotiation.alice
    bob = open_client(cast.bob)
    resumed: list[int] = []
    for round_ in range(plan.rounds):
        source = tmp_path / f"terms-{round_}.bin"
        source.write_bytes(uuid.uuid4().bytes * (24 * CHUNK // 16 - round_))
        chunks = -(-source.stat().st_size // CHUNK)
        at_chunk = plan.rng.randint(0, chunks)
        reached, progress = moment_reached(functools.partial(_past, at_chunk * CHUNK))
        send = functools.partial(
            alice.documents.send_file, room, source, channel="plenary", chunk_size=CHUNK
        )
        upload = crasher.during(send(progress=progress))
        if at_chunk:  # else the kill cuts the upload's creation
            await reached(upload)
        await plan.moment(0.05)
        await crasher.crash_and_restart()  # blobs whole on disk, uploads hold what they recorded
        sent = await upload
        # Never half visible: every document in the room downloads whole, before any resume.
        documents = [m async for m in bob.messages(room) if m.content.get("type") == "document"]
        for message in documents:
            await bob.documents.download(room, message.seq, tmp_path / f"check-{message.seq}")
        if sent is None:  # the kill took it: the same call resumes it
            sent = (await crasher.retried(send))[0]
            resumed.append(sent.resumed_from_chunk)
        output = tmp_path / f"received-{round_}.bin"
        await bob.documents.download(room, sent.receipt.seq, output)
        assert output.read_bytes() == source.read_bytes()
        names = [
            m.content.get("name")
            async for m in bob.messages(room)
            if m.content.get("type") == "document"
        ]
        assert names.count(source.name) == 1
        assert not alice.keystore.state.pending_uploads
    print(f"{crasher.kills} kills during uploads; resumed from chunks {resumed}")


def _past(at: int, done: int, total: int) -> bool:
    """Whether an upload reporting `done` of `total` bytes is at `at` (or finished)."""
    return done >= min(at, total)
