"""Every attack of the hostile-server harness, each defined once, here.

An attack sets up one lie of a hostile server around the talks scene: Mona
mediates a room with Alice (side a, the victim, behind the seam
`Talks.server`) and Bob (side b). Some lies are told on the wire
(`MaliciousServer` rules), some are written into the operator's own database
and logs first (`Operator`), so that they get past the checks they are not
about. Each attack says what it did in its docstring; the test named after it
(``tests/adversarial/test_hostile_server.py``, and through the `parley`
command ``tests/adversarial/test_hostile_cli.py``) asserts the SDK names it.

The helpers below the attacks forge what the operator can make on its own
(keys, accounts, rosters signed by keys it holds) and, where an attack needs a
colluding or compromised party, sign with that party's real keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client_sdk.client import ParleyClient
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import CheckpointRef, Envelope, Recipient, seal_envelope
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.models import Side
from client_sdk.protocol.note import Checkpoint
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Registration,
    Roster,
    RosterDevice,
    RosterMember,
    SignedStatement,
    sign_statement,
)
from tests.support.hostile import (
    MaliciousServer,
    Operator,
    dump,
    edit_events,
    now_ms,
    replace_with,
)

DAY_MS = 24 * 3600 * 1000

ATTACKS = (
    "drop_an_event",
    "reorder_two_events",
    "replay_an_old_envelope",
    "swap_a_ciphertext",
    "swap_a_key_wrap",
    "withhold_the_tail",
    "serve_a_forked_log",
    "fork_the_log_for_another_member",
    "roll_a_checkpoint_back",
    "roll_the_log_back",
    "roll_the_directory_back",
    "substitute_a_device_key",
    "add_a_roster_member",
    "withhold_a_removal",
    "serve_a_stale_roster_to_a_sender",
    "serve_a_revoked_device_as_current",
    "strip_cosignatures",
)
"""Every attack below, by name: each has its test in test_hostile_server.py."""


@dataclass(frozen=True, slots=True)
class Talks:
    """Mona mediates a room with Alice (side a) and Bob (side b); Alice is behind `server`."""

    server: MaliciousServer
    operator: Operator
    mediator: ParleyClient
    alice: ParleyClient
    bob: ParleyClient
    room_id: str

    @property
    def messages_path(self) -> str:
        """Where envelopes are posted."""
        return f"/v1/rooms/{self.room_id}/messages"

    @property
    def events_path(self) -> str:
        """Where events are paged."""
        return f"/v1/rooms/{self.room_id}/events"


def account_id(client: ParleyClient) -> str:
    """The client's account id."""
    return client.keystore.state.account_id


def device_id(client: ParleyClient) -> str:
    """The client's device id."""
    return client.keystore.state.device_id


# --- the attacks ----------------------------------------------------------------------


async def _two_from_bob(talks: Talks) -> None:
    """Bob sends two messages: events 4 and 5."""
    await talks.bob.send(talks.room_id, "First.")
    await talks.bob.send(talks.room_id, "Second.")


async def _read(client: ParleyClient, room_id: str) -> None:
    """`client` reads the room to its end, and so verifies its newest checkpoint."""
    async for _ in client.messages(room_id):
        pass


async def drop_an_event(talks: Talks) -> None:
    """Events 4 and 5 exist; Alice's pages leave event 4 out."""
    await _two_from_bob(talks)
    talks.server.rewrite_response(
        "GET", talks.events_path, edit_events(lambda page: [e for e in page if e["seq"] != 4])
    )


async def reorder_two_events(talks: Talks) -> None:
    """Events 4 and 5 exist; Alice's pages serve 5 before 4."""
    await _two_from_bob(talks)
    talks.server.rewrite_response(
        "GET", talks.events_path, edit_events(lambda page: [*page[:3], page[4], page[3]])
    )


async def replay_an_old_envelope(talks: Talks) -> str:
    """Bob's message (event 4) is logged and stored again as event 5, as the operator
    can; returns its message id."""
    receipt = await talks.bob.send(talks.room_id, "We accept the terms.")
    page = await talks.bob.http.request("GET", talks.events_path, params={"after": 3})
    await talks.operator.store_envelope(talks.room_id, page["events"][0]["payload"])
    return receipt.message_id


def _swap(field: str, pick: Any) -> Any:
    """An edit of events 4 and 5 (two messages) putting event 5's `pick` into event 4."""

    def events(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fourth, fifth = (next(e for e in page if e["seq"] == s) for s in (4, 5))
        pick(fourth["payload"])[field] = pick(fifth["payload"])[field]
        return page

    return edit_events(events)


async def swap_a_ciphertext(talks: Talks) -> None:
    """Events 4 and 5 are Bob's messages; Alice is served event 4 with event 5's
    ciphertext (a real ciphertext, sealed to her)."""
    await _two_from_bob(talks)
    talks.server.rewrite_response("GET", talks.events_path, _swap("ciphertext", lambda p: p))


async def swap_a_key_wrap(talks: Talks) -> None:
    """Events 4 and 5 are Bob's messages; Alice is served event 4 with her key wrap of
    event 5 (a real wrap, sealed to her device)."""
    await _two_from_bob(talks)
    alice = talks.alice.keystore.state.device_id
    talks.server.rewrite_response("GET", talks.events_path, _swap(alice, lambda p: p["wraps"]))


async def withhold_the_tail(talks: Talks) -> None:
    """Events 4 and 5 exist and the checkpoint Alice is served covers them; her pages
    stop at event 4."""
    await _two_from_bob(talks)
    talks.server.rewrite_response(
        "GET", talks.events_path, edit_events(lambda page: [e for e in page if e["seq"] < 5])
    )


async def serve_a_forked_log(talks: Talks) -> Checkpoint:
    """Alice verified the log at its size; Bob sends; she alone is shown a tree of the
    next size with another history, signed with the server's real log key. Returns it."""
    await _read(talks.alice, talks.room_id)
    seen = talks.alice.keystore.checkpoint(talks.room_id)
    assert seen is not None
    await talks.bob.send(talks.room_id, "First.")
    origin = (await talks.alice.logs.identity(talks.room_id)).origin
    fork = Checkpoint(origin, seen.size + 1, bytes(32))
    note = talks.operator.sign(fork)
    talks.server.rewrite_response(
        "GET",
        talks.events_path,
        lambda page: {**page, "checkpoint": note, "size": fork.size, "consistency_proof": []},
    )
    return fork


async def fork_the_log_for_another_member(talks: Talks) -> int:
    """Alice verified the log at its size; Bob alone was shown another history of that
    size (another root, signed with the real key), and his next message, which the
    server logs, says so in its header (the gossip every envelope carries). Returns
    that message's event."""
    await _read(talks.alice, talks.room_id)
    seen = talks.alice.keystore.checkpoint(talks.room_id)
    assert seen is not None
    envelope = seal_from(
        talks.bob,
        talks.room_id,
        "Sent from a forked view.",
        roster_version=3,
        to=[talks.mediator, talks.alice, talks.bob],
        checkpoint=CheckpointRef(size=seen.size, root=b64e(bytes(32))),
    )
    receipt = await talks.bob.http.request(
        "POST", talks.messages_path, json=envelope.model_dump(mode="json")
    )
    seq: int = receipt["seq"]
    return seq


async def _checkpoint_at(talks: Talks, size: int) -> str:
    """The room log's real signed checkpoint of `size`."""
    path = f"/v1/logs/{talks.room_id}/checkpoint"
    return await talks.mediator.http.text(path, params={"size": size})


async def roll_a_checkpoint_back(talks: Talks) -> None:
    """Alice read the room at size 5; she is then served the real, older checkpoint of
    size 4 as the newest, with the events it covers."""
    await _two_from_bob(talks)
    await _read(talks.alice, talks.room_id)
    older = await _checkpoint_at(talks, 4)

    def page(answer: dict[str, Any]) -> dict[str, Any]:
        events = [e for e in answer["events"] if e["seq"] <= 4]
        return {**answer, "events": events, "checkpoint": older, "size": 4, "consistency_proof": []}

    talks.server.rewrite_response("GET", talks.events_path, page)


async def roll_the_log_back(talks: Talks) -> None:
    """Alice read the room at size 5; then the server's log is the one of size 4 (the
    newest event deleted): it refuses her size as beyond its log, and serves the
    checkpoint of size 4 as its newest."""
    await _two_from_bob(talks)
    await _read(talks.alice, talks.room_id)
    older = await _checkpoint_at(talks, 4)
    refusal = {"error": {"code": "invalid", "message": "since=5 is beyond the log's size 4"}}
    talks.server.rewrite_response("GET", talks.events_path, replace_with(refusal), status=422)
    talks.server.rewrite_text("GET", f"/v1/logs/{talks.room_id}/checkpoint", lambda _: older)


async def roll_the_directory_back(talks: Talks) -> None:
    """Alice verified the directory log at its size; then the server's directory is the
    one of the size before: it refuses her size as beyond its log, and serves the older,
    real checkpoint as its newest."""
    await talks.alice.account(account_id(talks.mediator))  # verifies the directory's size
    stored = talks.alice.keystore.checkpoint("directory")
    assert stored is not None
    size = stored.size - 1
    older = await talks.mediator.http.text("/v1/logs/directory/checkpoint", params={"size": size})
    refusal = {"error": {"code": "invalid", "message": f"since={size + 1} is beyond the log"}}
    talks.server.rewrite_response(
        "GET", f"/v1/accounts/{account_id(talks.bob)}", replace_with(refusal), status=422
    )
    talks.server.rewrite_text("GET", "/v1/logs/directory/checkpoint", lambda _: older)


async def substitute_a_device_key(talks: Talks) -> None:
    """Bob's account is served with his device's signing and encryption keys replaced
    by the server's own, under a certificate the server signed."""
    bob = account_id(talks.bob)
    substitute = device_json(SigningKey.generate(), bob)
    substitute["device_id"] = device_id(talks.bob)

    def account(answer: dict[str, Any]) -> dict[str, Any]:
        answer["devices"] = [substitute]
        return answer

    talks.server.rewrite_response("GET", f"/v1/accounts/{bob}", account)


async def add_a_roster_member(talks: Talks) -> RosterMember:
    """Alice is shown a roster version 4 that adds Eve, a member the server made up,
    signed with a key of the server's under Mona's device id. Returns Eve."""
    current = await served_roster(talks.mediator, talks.room_id, 3)
    eve = eavesdropper()
    forged = next_roster(
        current,
        members=[*Roster.model_validate(current.body).members, eve],
        signer=SigningKey.generate(),
        signer_device=device_id(talks.mediator),
    )
    serve_as_current_roster(talks.server, talks.room_id, forged)
    return eve


async def withhold_a_removal(talks: Talks) -> None:
    """Mona removes Bob (roster version 4, event 4) and then posts (event 5); Alice is
    shown the room as if the removal never happened: roster 3 current, version 4 not
    found, event 4 left out of her pages."""
    await talks.mediator.remove_member(talks.room_id, account_id(talks.bob))
    await talks.mediator.send(talks.room_id, "Bob has left the talks.")
    still_with_bob = await served_roster(talks.mediator, talks.room_id, 3)
    talks.server.rewrite_response(
        "GET",
        f"/v1/rooms/{talks.room_id}",
        lambda room: {**room, "roster_version": 3, "roster": dump(still_with_bob)},
    )
    talks.server.rewrite_response(
        "GET",
        f"/v1/rooms/{talks.room_id}/rosters/4",
        replace_with({"error": {"code": "not_found", "message": "no such roster version"}}),
        status=404,
    )
    talks.server.rewrite_response(
        "GET", talks.events_path, edit_events(lambda page: [e for e in page if e["seq"] != 4])
    )


async def serve_a_stale_roster_to_a_sender(talks: Talks) -> None:
    """Mona removes Bob (roster version 4, event 4); Alice, who has not read since, is
    shown roster 3 as current, and her message sealed to it is accepted and logged (as
    event 5), as a server that skips its roster check would."""
    await talks.mediator.remove_member(talks.room_id, account_id(talks.bob))
    still_with_bob = await served_roster(talks.mediator, talks.room_id, 3)
    talks.server.rewrite_response(
        "GET",
        f"/v1/rooms/{talks.room_id}",
        lambda room: {**room, "roster_version": 3, "roster": dump(still_with_bob)},
    )

    async def accept(envelope: Any) -> Any:
        return await talks.operator.accept_message(talks.room_id, envelope)

    talks.server.respond("POST", talks.messages_path, accept)


async def serve_a_revoked_device_as_current(talks: Talks) -> str:
    """Bob's device is revoked (the operator's logged revocation: reported stolen); Alice
    is served his account with that device still in use, beside the revocation the
    directory log holds. Returns the device id."""
    bob = account_id(talks.bob)
    path = f"/v1/accounts/{bob}"
    before = await talks.mediator.http.request("GET", path)
    await talks.operator.revoke(device_id(talks.bob))
    talks.server.rewrite_response(
        "GET", path, lambda account: {**account, "devices": before["devices"]}
    )
    return device_id(talks.bob)


def strip_cosignatures(server: MaliciousServer, log_id: str) -> None:
    """Every checkpoint of `log_id` is served with its witnesses' cosignature lines
    removed (only the log's own signature left)."""

    def strip(note: str) -> str:
        text, _, signatures = note.partition("\n\n")
        origin = text.split("\n", 1)[0]
        kept = [line for line in signatures.splitlines() if line.startswith(f"\u2014 {origin} ")]
        return text + "\n\n" + "".join(line + "\n" for line in kept)

    server.rewrite_text("GET", f"/v1/logs/{log_id}/checkpoint", strip)


# --- what a malicious operator can make -----------------------------------------------


def eavesdropper() -> RosterMember:
    """A member the server made up: its own account key and device."""
    key = SigningKey.generate()
    device = RosterDevice(
        device_id=key_id(key.public_bytes()), signing_key=b64e(key.public_bytes())
    )
    return RosterMember(
        account_id="eavesdropper",
        name="Eve",
        side=Side.OBSERVER,
        account_key=b64e(SigningKey.generate().public_bytes()),
        devices=[device],
    )


def device_json(
    account_key: SigningKey,
    account: str,
    *,
    device_key: SigningKey | None = None,
    encryption_key: EncryptionKey | None = None,
    issued_at: int | None = None,
    not_after: int | None = None,
) -> dict[str, Any]:
    """A directory device entry, its certificates signed by `account_key`."""
    device_key = device_key or SigningKey.generate()
    encryption_key = encryption_key or EncryptionKey.generate()
    issued_at = now_ms() if issued_at is None else issued_at
    not_after = issued_at + 7 * DAY_MS if not_after is None else not_after
    device = key_id(device_key.public_bytes())
    public = encryption_key.public_bytes()
    cert = sign_statement(
        account_key,
        DeviceCert(
            account_id=account,
            device_id=device,
            signing_key=b64e(device_key.public_bytes()),
            issued_at=issued_at,
        ),
    )
    encryption_cert = sign_statement(
        account_key,
        EncryptionKeyCert(
            account_id=account,
            device_id=device,
            key_id=key_id(public),
            public_key=b64e(public),
            issued_at=issued_at,
            not_after=not_after,
        ),
    )
    return {
        "device_id": device,
        "signing_key": b64e(device_key.public_bytes()),
        "cert": dump(cert),
        "encryption_key": {
            "key_id": key_id(public),
            "public_key": b64e(public),
            "not_after": not_after,
            "cert": dump(encryption_cert),
        },
    }


def impostor_account(of: ParleyClient) -> dict[str, Any]:
    """The directory entry of `of`'s account id and name, under keys the server made up.

    Self-consistent: the registration, device and encryption key certificates
    all verify under the impostor's account key.
    """
    state = of.keystore.state
    account_key = SigningKey.generate()
    registration = sign_statement(
        account_key,
        Registration(
            account_id=state.account_id,
            name=state.name,
            role=state.role,
            account_key=b64e(account_key.public_bytes()),
            issued_at=now_ms(),
        ),
    )
    return {
        "account_id": state.account_id,
        "name": state.name,
        "role": state.role.value,
        "account_key": b64e(account_key.public_bytes()),
        "registration": dump(registration),
        "devices": [device_json(account_key, state.account_id)],
    }


async def impersonate(talks: Talks, server: MaliciousServer, of: ParleyClient) -> dict[str, Any]:
    """Swap in an impostor for `of`'s account: logged in the directory, served by `server`.

    The answer keeps the real checkpoint, with only the impostor's directory
    entries (and their real inclusion proofs); returns the impostor's account.
    """
    impostor = impostor_account(of)
    await talks.operator.log_account(impostor)
    serve_account(server, impostor)
    return impostor


def serve_account(server: MaliciousServer, account: dict[str, Any]) -> None:
    """Make `server` answer for `account`'s id with it, proving only its own statements."""
    statements = [account["registration"]]
    for device in account["devices"]:
        statements.append(device["cert"])
        if device.get("encryption_key"):
            statements.append(device["encryption_key"]["cert"])
    hashes = {SignedStatement.model_validate(s).body_hash() for s in statements}

    def answer(real: dict[str, Any]) -> dict[str, Any]:
        entries = [
            e
            for e in real["directory"]["entries"]
            if SignedStatement.model_validate(e["statement"]).body_hash() in hashes
        ]
        return {**account, "directory": {**real["directory"], "entries": entries}}

    server.rewrite_response("GET", f"/v1/accounts/{account['account_id']}", answer)


async def served_roster(client: ParleyClient, room_id: str, version: int) -> SignedStatement:
    """Roster `version` of a room, as the (honest) server serves it to `client`."""
    data = await client.http.request("GET", f"/v1/rooms/{room_id}/rosters/{version}")
    return SignedStatement.model_validate(data["roster"])


def next_roster(
    current: SignedStatement,
    *,
    members: list[RosterMember],
    signer: SigningKey,
    signer_device: str,
) -> SignedStatement:
    """The version after `current`, chained to it, listing `members`, signed by `signer`."""
    roster = Roster.model_validate(current.body)
    return sign_statement(
        signer,
        Roster(
            room_id=roster.room_id,
            version=roster.version + 1,
            prev_hash=b64e(current.body_hash()),
            title=roster.title,
            members=members,
            policy=roster.policy,
            signer_device=signer_device,
            issued_at=now_ms(),
        ),
    )


def roster_member(client: ParleyClient, side: Side) -> RosterMember:
    """How a roster lists `client`'s account and device."""
    state = client.keystore.state
    return RosterMember(
        account_id=state.account_id,
        name=state.name,
        side=side,
        account_key=b64e(state.account_key.public_bytes()),
        devices=[
            RosterDevice(
                device_id=state.device_id, signing_key=b64e(state.device_key.public_bytes())
            )
        ],
    )


def serve_as_current_roster(server: MaliciousServer, room_id: str, signed: SignedStatement) -> None:
    """Make `server` present `signed` as the room's current roster, wherever it is read."""
    version = signed.body["version"]
    server.rewrite_response(
        "GET",
        f"/v1/rooms/{room_id}",
        lambda room: {**room, "roster_version": version, "roster": dump(signed)},
    )
    server.rewrite_response(
        "GET",
        f"/v1/rooms/{room_id}/rosters/{version}",
        replace_with({"version": version, "seq": 1_000, "roster": dump(signed)}),
        status=200,
    )


async def read_into(read: list[str], client: ParleyClient, room_id: str) -> None:
    """Append each message text `client` reads in the room to `read`, as it is handed over."""
    async for message in client.messages(room_id):
        read.append(message.text)


def seal_from(
    sender: ParleyClient,
    room_id: str,
    text: str,
    *,
    roster_version: int,
    to: list[ParleyClient],
    checkpoint: CheckpointRef | None = None,
) -> Envelope:
    """An envelope `sender`'s device really signs, sealed to the current keys of `to`
    (its header naming `checkpoint` as the newest its sender saw, if given)."""
    state = sender.keystore.state
    return seal_envelope(
        content={"type": "text", "text": text},
        room_id=room_id,
        channel="plenary",
        roster_version=roster_version,
        sender_device=state.device_id,
        sender_key=state.device_key,
        recipients=[
            Recipient(device_id(c), c.keystore.current_encryption_key().public) for c in to
        ],
        sent_at=now_ms(),
        checkpoint=checkpoint,
    )
