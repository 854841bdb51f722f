"""Dossiers in a room: commit a record set, disclose chosen parts in phases, and check
what others disclosed against their commitments in the log.

A commitment and a disclosure are ordinary end-to-end-encrypted messages whose
content has its own type (`client_sdk.protocol.content`): the server learns
nothing about dossiers and enforces, as for any message, that only a member
allowed to post on the channel, in the current roster, sends them. The commit
message goes to plenary; its log leaf is the dossier's commitment. The record
values and every Disclosure stay in this profile's sealed `DossierStore`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from client_sdk.client.dossier_checks import (
    AccountLookup,
    check_disclosure,
    disclosure_content,
    seen_commit,
)
from client_sdk.client.dossier_models import (
    CommittedDossier,
    ReceivedDisclosure,
    SeenCommit,
    SentDisclosure,
)
from client_sdk.client.dossier_store import DisclosureLog, DossierStore, StoredDossier
from client_sdk.client.models import Message, Receipt, Room
from client_sdk.keystore import Keystore
from client_sdk.protocol.content import DossierCommit, DossierDisclosure
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.mediation import PLENARY, channel_sides
from client_sdk.protocol.sdjwt import (
    DEFAULT_LIMITS,
    DossierLimits,
    issue_dossier,
    load_issued,
    parse_fields_spec,
    parse_records_spec,
)
from client_sdk.protocol.sdjwt.disclosure import split_sd_jwt

SendContent = Callable[[str, dict[str, Any], str], Awaitable[Receipt]]
"""Seal `content` to a channel of a room, send it and check the receipt."""
ReadMessages = Callable[[str, int], AsyncIterator[Message]]
"""The room's verified, decrypted messages after a sequence number."""
RoomLookup = Callable[[str], Awaitable[Room]]
Clock = Callable[[], int]


class Dossiers:
    """This device's dossiers, and the disclosures it receives."""

    def __init__(
        self,
        *,
        keystore: Keystore,
        store: DossierStore,
        send: SendContent,
        messages: ReadMessages,
        account: AccountLookup,
        room: RoomLookup,
        clock: Clock,
        limits: DossierLimits = DEFAULT_LIMITS,
    ) -> None:
        """Compose from the client's sending, reading and directory lookups."""
        self.store = store
        self._keystore = keystore
        self._send = send
        self._messages = messages
        self._account = account
        self._room = room
        self._clock = clock
        self._limits = limits

    # --- the issuer -----------------------------------------------------------------

    async def commit(
        self, room_id: str, records: object, *, title: str, decoys: int = 0
    ) -> CommittedDossier:
        """Sign `records` as a dossier and post its issuer-signed JWT to the room's plenary.

        The record list is checked first (`check_records`): bad input raises
        `ProtocolError` and nothing is sent. The issuance is kept sealed in
        the profile; only the JWT (digests, no values) leaves this machine.
        """
        state = self._keystore.state
        issued = issue_dossier(
            records,
            key=state.device_key,
            issuer=state.account_id,
            device_id=state.device_id,
            room_id=room_id,
            title=title,
            issued_at=self._clock() // 1000,
            decoys=decoys,
            limits=self._limits,
        )
        content = DossierCommit(dossier_id=issued.dossier_id, title=title, jwt=issued.jwt)
        receipt = await self._send(room_id, content.model_dump(), PLENARY)
        self.store.add_dossier(
            StoredDossier(
                dossier_id=issued.dossier_id,
                room_id=room_id,
                title=title,
                records=issued.record_count,
                decoys=decoys,
                fields=issued.field_names(),
                commit_seq=receipt.seq,
                leaf_index=receipt.leaf_index,
                committed_at=self._clock(),
                issuance=issued.issuance(),
            )
        )
        return CommittedDossier(
            dossier_id=issued.dossier_id,
            room_id=room_id,
            title=title,
            seq=receipt.seq,
            leaf_index=receipt.leaf_index,
            records=issued.record_count,
            decoys=decoys,
        )

    def own(self, room_id: str) -> list[StoredDossier]:
        """The dossiers this device committed in the room."""
        return [d for d in self.store.read().dossiers if d.room_id == room_id]

    def log(self, room_id: str, dossier_id: str) -> list[DisclosureLog]:
        """What this device disclosed of a dossier: to whom, when, in which phase."""
        return [
            e
            for e in self.store.read().disclosures
            if e.room_id == room_id and e.dossier_id == dossier_id
        ]

    async def disclose(
        self,
        room_id: str,
        dossier_id: str,
        *,
        records: str,
        channel: str,
        fields: str | None = None,
        phase: str | None = None,
    ) -> SentDisclosure:
        """Send a presentation of the chosen records (``"1-50,77"``, 1-based) and fields
        (``"name,service_number"``; default all) on `channel`.

        A record or field that does not exist, an unknown channel or dossier is
        refused with `ProtocolError` before anything is sent.
        """
        if channel_sides(channel) is None:
            raise ProtocolError(f"unknown channel {channel!r}: plenary, caucus-a or caucus-b")
        if phase is not None and not 1 <= len(phase) <= 200:
            raise ProtocolError("a phase is 1 to 200 characters")
        stored = self.store.dossier(dossier_id)
        if stored is None or stored.room_id != room_id:
            raise ProtocolError(f"no dossier {dossier_id} committed from this profile in {room_id}")
        state = self._keystore.state
        issued = load_issued(
            stored.issuance, issuer_key=state.device_key.public_bytes(), room_id=room_id
        )
        numbers = parse_records_spec(records, issued.record_count)
        names = parse_fields_spec(fields) if fields is not None else None
        presentation = issued.present(numbers, names)
        room = await self._room(room_id)
        sides = channel_sides(channel) or set()
        audience = [
            m.name for m in room.members if m.side in sides and m.account_id != state.account_id
        ]
        content = DossierDisclosure(
            dossier_id=dossier_id,
            commit_seq=stored.commit_seq,
            phase=phase,
            presentation=presentation,
        )
        receipt = await self._send(room_id, content.model_dump(exclude_none=True), channel)
        chosen_fields = tuple(names if names is not None else issued.field_names())
        self.store.add_disclosure(
            DisclosureLog(
                dossier_id=dossier_id,
                room_id=room_id,
                seq=receipt.seq,
                channel=channel,
                to=audience,
                phase=phase,
                records=numbers,
                fields=list(chosen_fields),
                sent_at=self._clock(),
            )
        )
        return SentDisclosure(
            dossier_id=dossier_id,
            room_id=room_id,
            seq=receipt.seq,
            leaf_index=receipt.leaf_index,
            channel=channel,
            phase=phase,
            records=tuple(numbers),
            fields=chosen_fields,
            presentation=presentation,
        )

    # --- recipients -----------------------------------------------------------------

    def tracker(self, room_id: str) -> DisclosureTracker:
        """A checker for the room's messages as they are read, in order."""
        return DisclosureTracker(room_id, self._messages, self._account)

    async def received(self, room_id: str) -> list[ReceivedDisclosure]:
        """Every disclosure in the room this device can read, each verified or refused."""
        tracker = self.tracker(room_id)
        found = []
        async for message in self._messages(room_id, 0):
            seen = await tracker.see(message)
            if isinstance(seen, ReceivedDisclosure):
                found.append(seen)
        return found

    async def verify(self, room_id: str, presentation: str) -> ReceivedDisclosure:
        """Verify a presentation from a file against the commitment in the room's log:
        its JWT must be byte for byte one a ``dossier-commit`` event carries.

        Raises `VerificationError` (a presentation from a file is not a room event,
        so there is nothing to show when it fails).
        """
        try:
            jwt, _ = split_sd_jwt(presentation.strip())
        except ProtocolError as exc:
            raise VerificationError(f"malformed presentation: {exc}") from exc
        tracker = self.tracker(room_id)
        async for message in self._messages(room_id, 0):
            await tracker.see(message)
        commit = next((c for c in tracker.commits.values() if c.jwt == jwt), None)
        if commit is None:
            raise VerificationError(f"the issuer-signed JWT is not one committed in room {room_id}")
        # The presentation is checked as if its issuer had sent it after the commit.
        stand_in = Message(
            room_id=room_id,
            seq=commit.seq + 1,
            leaf_index=commit.seq,
            channel="file",
            message_id="file",
            sender_account_id=commit.sender_account_id,
            sender_name=commit.sender_name,
            sender_device=commit.sender_device,
            sent_at=commit.committed_at,
            server_time=commit.committed_at,
            text="",
            content=DossierDisclosure(
                dossier_id=commit.dossier_id,
                commit_seq=commit.seq,
                presentation=presentation.strip(),
            ).model_dump(exclude_none=True),
            signed_sha256="",
            relay=None,
        )
        result = await check_disclosure(stand_in, commit, self._account)
        if result.refused is not None:
            raise VerificationError(result.refused)
        return result


class DisclosureTracker:
    """Follows a room's messages in order: remembers commitments, checks disclosures."""

    def __init__(self, room_id: str, messages: ReadMessages, account: AccountLookup) -> None:
        """Track `room_id`; `messages` fetches a commitment read before the first message."""
        self.room_id = room_id
        self.commits: dict[int, SeenCommit] = {}
        self._messages = messages
        self._account = account

    async def see(self, message: Message) -> SeenCommit | ReceivedDisclosure | None:
        """What `message` is for dossiers: a commitment, a checked disclosure, or None."""
        commit = seen_commit(message)
        if commit is not None:
            self.commits[message.seq] = commit
            return commit
        try:
            content = disclosure_content(message)
        except ProtocolError:
            return await check_disclosure(message, None, self._account)
        if content is None:
            return None
        found = self.commits.get(content.commit_seq)
        if found is None and 1 <= content.commit_seq < message.seq:
            found = await self._fetch(content.commit_seq)
        return await check_disclosure(message, found, self._account)

    async def _fetch(self, seq: int) -> SeenCommit | None:
        # A commitment before where reading started (`parley read --after`).
        found = None
        async for message in self._messages(self.room_id, seq - 1):
            # Read on to the end (a page at most): an abandoned reader would hold its page.
            if message.seq == seq:
                found = seen_commit(message)
        if found is not None:
            self.commits[seq] = found
        return found
