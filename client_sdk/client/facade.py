"""The async Parley client: enrollment, rooms, sending and verified reading.

    async with ParleyClient.open(home, passphrase) as client:
        room = await client.create_room("Talks")
        await client.send(room.room_id, "hello")
        async for message in client.messages(room.room_id, follow=True):
            print(message.sender_name, message.text)

Everything the server serves is checked before it is used or shown: accounts
by their own signatures, rosters by the mediators' signature chain, messages
by their sender's signature and exact recipient set. Nothing is returned
half-verified; a failed check raises `VerificationError`.

`ParleyClient` is a small facade: it builds its parts (HTTP session, log
verifier, directory, key rotation, room chains, reader, sender, room
operations), each given what it needs in its constructor, and hands each call
to the part that does it. No part knows the facade.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import httpx

from client_sdk.client.chains import RoomChains
from client_sdk.client.devices import Devices
from client_sdk.client.directory import Directory
from client_sdk.client.enrollment import enroll_device
from client_sdk.client.helpers import Clock
from client_sdk.client.http import HttpSession
from client_sdk.client.instruments import InstrumentActs
from client_sdk.client.keys import DEFAULT_KEY_LIFETIME_MS, KeyRotation
from client_sdk.client.lifecycle import ClientState, Lifecycle
from client_sdk.client.linking import (
    PendingLink,
    keystore_from_grant,
    request_link,
    wait_for_grant,
)
from client_sdk.client.logs import LogVerifier
from client_sdk.client.models import (
    Acknowledgement,
    ContactFingerprint,
    Message,
    Receipt,
    Room,
    RoomChange,
    RoomStateView,
)
from client_sdk.client.reader import Reader
from client_sdk.client.receipts import Receipts
from client_sdk.client.rooms import RoomOperations
from client_sdk.client.sender import PLENARY, Sender, relay_content
from client_sdk.client.verify import VerifiedAccount
from client_sdk.keystore import (
    DEFAULT_SCRYPT_N,
    Keystore,
    default_home,
    passphrase_from_env_or_prompt,
)
from client_sdk.protocol.errors import (
    KeystoreError,
    NotFoundError,
    NotPermitted,
    PermissionDeniedError,
    ProtocolError,
    VerificationError,
)
from client_sdk.protocol.mediation import Refusal
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.statements import Action, Mode
from client_sdk.protocol.wire.identity import EnrollmentTokenResponse

if TYPE_CHECKING:
    from client_sdk.client.agreements import Agreements
    from client_sdk.client.documents import Documents
    from client_sdk.client.dossiers import Dossiers
    from client_sdk.client.excerpts import Excerpts
    from client_sdk.client.offers import Offers
    from client_sdk.protocol.excerpt import Excerpt


MAX_TEXT_BYTES = 512 * 1024
"""The longest text `send` seals (UTF-8): sealed, encoded and signed it stays under the
server's default request limit (1 MiB); a longer one goes as a document."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ParleyClient:
    """One device's connection to a Parley server."""

    def __init__(
        self,
        keystore: Keystore,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = _now_ms,
        servers: Sequence[str] | None = None,
    ) -> None:
        """Use an opened keystore; see `open` and `enroll`.

        Requests go to the profile's server URLs (`servers` instead, if given: one
        deployment's replicas, the preferred first); when one stops answering the
        client fails over to the next (see `client_sdk.client.http`).
        """
        self.keystore = keystore
        self.clock = clock
        state = keystore.state
        self.http = HttpSession(
            state.servers if servers is None else servers,
            device_id=state.device_id,
            device_key=state.device_key,
            transport=transport,
        )
        self.logs = LogVerifier(keystore, self.http)
        self._life = Lifecycle()
        self._directory = Directory(self.http, self.logs, keystore, clock)
        self._keys = KeyRotation(self.http, self.logs, keystore, clock)
        self._chains = RoomChains(self.http, self._directory, keystore)
        self._reader = Reader(
            self.http,
            self.logs,
            self._chains,
            self._keys,
            keystore,
            on_batch=lambda room_id, opened: self._receipts.automatic(room_id, opened),
        )
        self._sender = Sender(
            self.http,
            self.logs,
            self._chains,
            self._directory,
            self._keys,
            keystore,
            clock,
            self._reader.check_in_force,
        )
        self._acts = InstrumentActs(
            self.http, self.logs, self._chains, self._sender, keystore, clock
        )
        self._receipts = Receipts(self._acts, self._reader, self._chains, keystore)
        self._rooms = RoomOperations(
            self.http, self.logs, self._chains, self._directory, self._reader, keystore, clock
        )
        self.devices = Devices(self.http, self.logs, self._directory, keystore, clock)
        """This account's devices: list, revoke, approve a new device's link (`Devices`)."""

    # The parts only some commands use are built, and their modules imported, on
    # first use: `parley send` and `parley read` never load the dossier, excerpt,
    # document, agreement or offer code (issue 11, "The command line").

    @cached_property
    def dossiers(self) -> Dossiers:
        """Dossiers: commit, disclose, and check what others disclose (`Dossiers`)."""
        from client_sdk.client.dossier_store import DossierStore
        from client_sdk.client.dossiers import Dossiers

        state = self.keystore.state
        return Dossiers(
            keystore=self.keystore,
            store=DossierStore(self.keystore.home, state.device_id, state.device_key),
            send=lambda room_id, content, channel: self._sender.send(
                room_id, content, channel=channel
            ),
            messages=lambda room_id, after: self._reader.messages(room_id, after=after),
            account=self._directory.account,
            room=self._rooms.room,
            clock=self.clock,
        )

    @cached_property
    def _excerpts(self) -> Excerpts:
        from client_sdk.client.excerpts import Excerpts

        return Excerpts(self.http, self.logs, self.keystore)

    @cached_property
    def documents(self) -> Documents:
        """Documents: send a file encrypted in chunks, resume, download (`Documents`)."""
        from client_sdk.client.documents import Documents

        return Documents(
            self.http,
            self.keystore,
            self.clock,
            seal=lambda room_id, content, channel, message_id, key: self._sender.seal(
                room_id, content, channel=channel, message_id=message_id, content_key=key
            ),
            post=self._sender.post,
            message_at=self._reader.message_at,
        )

    @cached_property
    def agreements(self) -> Agreements:
        """Agreements: propose a document, sign its exact hash, show who signed
        (`Agreements`)."""
        from client_sdk.client.agreements import Agreements

        return Agreements(
            self.http, self._acts, self._reader, self._chains, self.keystore, self.clock
        )

    @cached_property
    def offers(self) -> Offers:
        """Sealed-offer rounds: open, commit, reveal, open escrow, settle, show (`Offers`)."""
        from client_sdk.client.offer_store import OfferStore
        from client_sdk.client.offers import Offers

        state = self.keystore.state
        return Offers(
            self._acts,
            self._reader,
            self._chains,
            self._sender,
            self.keystore,
            OfferStore(self.keystore.home, state.device_id, state.device_key),
            self.clock,
        )

    @classmethod
    def open(
        cls,
        home: Path | None = None,
        passphrase: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        servers: Sequence[str] | None = None,
    ) -> ParleyClient:
        """Open the keystore in `home` (default `$PARLEY_HOME`) and connect as its device
        (to `servers` instead of the profile's server URLs, if given)."""
        home = home or default_home()
        if not Keystore.exists(home):  # say so before asking for a passphrase
            raise KeystoreError(f"no keystore in {home}; run `parley enroll` first")
        passphrase = passphrase if passphrase is not None else passphrase_from_env_or_prompt()
        return cls(Keystore.open(home, passphrase), transport=transport, servers=servers)

    @classmethod
    async def enroll(
        cls,
        *,
        server: str | Sequence[str],
        token: str,
        home: Path,
        passphrase: str,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = _now_ms,
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> ParleyClient:
        """Generate keys here, register their public halves, and save them in a new keystore.

        `server` is one URL, or several (one deployment's replicas, the preferred
        first): the profile keeps them all and fails over between them.
        """
        keystore = await enroll_device(
            server=server,
            token=token,
            home=home,
            passphrase=passphrase,
            transport=transport,
            clock=clock,
            scrypt_n=scrypt_n,
        )
        return cls(keystore, transport=transport, clock=clock)

    @staticmethod
    async def request_link(
        *,
        server: str | Sequence[str],
        account_id: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> PendingLink:
        """(A new device) make keys here and ask to join `account_id`; show
        `PendingLink.code` and have a device of the account approve that code."""
        return await request_link(server=server, account_id=account_id, transport=transport)

    @classmethod
    async def complete_link(
        cls,
        pending: PendingLink,
        *,
        home: Path,
        passphrase: str,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = _now_ms,
        scrypt_n: int = DEFAULT_SCRYPT_N,
        poll_seconds: float = 1.0,
    ) -> ParleyClient:
        """(A new device) wait for the approval of `pending`, check what the approving
        device handed over, save the keystore in `home`, and check this device is in
        the account's directory record."""
        grant = await wait_for_grant(
            pending, transport=transport, clock=clock, poll_seconds=poll_seconds
        )
        keystore = keystore_from_grant(
            pending, grant, home=home, passphrase=passphrase, clock=clock, scrypt_n=scrypt_n
        )
        client = cls(keystore, transport=transport, clock=clock)
        try:
            account = await client.account(pending.account_id)
            if pending.device_id not in account.devices:
                raise VerificationError(
                    f"device {pending.device_id} is not in the account's directory record"
                )
        except BaseException:
            await client.aclose()
            raise
        return client

    # --- lifecycle ------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """Unopened, opened or closed."""
        return self._life.state

    async def __aenter__(self) -> Self:
        self._life.enter()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close network connections; the client cannot be used afterwards."""
        if self._life.close():
            await self.http.aclose()

    # --- identity -------------------------------------------------------------------

    def whoami(self) -> dict[str, str]:
        """This profile's account, device, role, name and server."""
        self._life.use()
        state = self.keystore.state
        return {
            "account_id": state.account_id,
            "device_id": state.device_id,
            "role": state.role.value,
            "name": state.name,
            "server": state.server,
        }

    async def token(self) -> str:
        """A currently valid bearer token (for scripting with curl)."""
        self._life.use()
        return await self.http.token()

    async def account(self, account_id: str) -> VerifiedAccount:
        """A directory account, checked by its own signatures and pinned on first sight.

        Raises `UntrustedKeyError` when its key is not the one pinned: account
        keys never change, so a change (even of a contact never verified) is
        trusted only after the user compares the safety number again.
        """
        self._life.use()
        return await self._directory.account(account_id)

    async def accounts(self, role: Role | None = None) -> list[dict[str, str]]:
        """Enrolled accounts (unverified summaries: id, name, role)."""
        self._life.use()
        return [s.model_dump(mode="json") for s in await self._directory.summaries(role)]

    async def safety_number(self, account_id: str) -> str:
        """The safety number this account shares with `account_id`, to compare out of band."""
        self._life.use()
        return await self._directory.safety_number(account_id)

    async def fingerprint(self, account_id: str) -> ContactFingerprint:
        """The safety number shared with `account_id`, and whether the key it is computed
        from is the one pinned for that contact (False: the key was substituted)."""
        self._life.use()
        return await self._directory.fingerprint(account_id)

    async def verify_contact(self, account_id: str, number: str) -> None:
        """Mark `account_id` verified if `number` is your shared safety number."""
        self._life.use()
        await self._directory.verify_contact(account_id, number)

    def is_verified(self, account_id: str) -> bool:
        """Whether the user verified this contact's current key."""
        self._life.use()
        return self._directory.is_verified(account_id)

    async def invite(self, name: str) -> dict[str, Any]:
        """(Mediators) a party's one-time enrollment token."""
        self._life.use()
        answer = await self.http.call(
            EnrollmentTokenResponse, "POST", "/v1/enrollment-tokens", json={"name": name}
        )
        return answer.model_dump(mode="json")

    async def maintain_keys(self) -> list[str]:
        """Rotate the encryption key when it is due and purge retired private keys.

        Called before sending and reading; returns the ids of purged keys.
        """
        self._life.use()
        return await self._keys.maintain()

    async def rotate_encryption_key(self, *, lifetime_ms: int = DEFAULT_KEY_LIFETIME_MS) -> str:
        """Publish a new encryption key; the old one is kept for a grace period."""
        self._life.use()
        return await self._keys.rotate(lifetime_ms=lifetime_ms)

    # --- rooms ----------------------------------------------------------------------

    async def create_room(
        self,
        title: str,
        *,
        require_verified: bool = False,
        witnesses: Sequence[str] = (),
        witness_quorum: int = 0,
        mediator_vouches: bool = False,
    ) -> Room:
        """(Mediators) open a room with yourself as its only member.

        The policy (`require_verified`, the witness keys and quorum, and
        `mediator_vouches`: members take your word for the members you verified)
        is part of the signed roster, so the server cannot change it.
        """
        self._life.use()
        return await self._rooms.create_room(
            title,
            require_verified=require_verified,
            witnesses=witnesses,
            witness_quorum=witness_quorum,
            mediator_vouches=mediator_vouches,
        )

    async def set_policy(
        self,
        room_id: str,
        *,
        require_verified: bool | None = None,
        witnesses: Sequence[str] | None = None,
        witness_quorum: int | None = None,
        mediator_vouches: bool | None = None,
    ) -> Room:
        """(Mediators) change the room's policy: a new roster version, signed here."""
        self._life.use()
        return await self._rooms.set_policy(
            room_id,
            require_verified=require_verified,
            witnesses=witnesses,
            witness_quorum=witness_quorum,
            mediator_vouches=mediator_vouches,
        )

    async def vouch(self, room_id: str) -> Room:
        """(Mediators) a new roster version vouching for every member you verified by
        safety number (rooms whose policy has `mediator_vouches`)."""
        self._life.use()
        return await self._rooms.vouch(room_id)

    async def add_member(self, room_id: str, account_id: str, side: Side) -> Room:
        """(Mediators) add an account on `side`: a new roster version, signed here."""
        self._life.use()
        return await self._rooms.add_member(room_id, account_id, side)

    async def remove_member(self, room_id: str, account_id: str) -> Room:
        """(Mediators) remove an account: a new roster version without it."""
        self._life.use()
        return await self._rooms.remove_member(room_id, account_id)

    async def rekey(self, room_id: str) -> Room:
        """(Mediators) a new roster version with each member's devices as the directory
        shows them now: revoked devices out, newly linked ones in."""
        self._life.use()
        return await self._rooms.rekey(room_id)

    async def room(self, room_id: str) -> Room:
        """A room with its roster verified back to version 1, and its mode, caucuses,
        mutes and status replayed from the signed log (not taken from the server)."""
        self._life.use()
        return await self._rooms.room(room_id)

    async def rooms(self) -> list[dict[str, Any]]:
        """Summaries of the rooms this account is in."""
        self._life.use()
        return [s.model_dump(mode="json") for s in await self._rooms.rooms()]

    async def moderate(
        self,
        room_id: str,
        action: Action,
        *,
        mode: Mode | None = None,
        side: Side | None = None,
        account_id: str | None = None,
    ) -> RoomStateView:
        """(Mediators) sign and submit one act on the room; return the room's state after it.

        The answer's checkpoint is checked like a message receipt; after
        ``close`` it is the room's final checkpoint.
        """
        self._life.use()
        return await self._rooms.moderate(
            room_id, action, mode=mode, side=side, account_id=account_id
        )

    # --- messages -------------------------------------------------------------------

    async def send(
        self, room_id: str, text: str, *, channel: str = PLENARY, message_id: str | None = None
    ) -> Receipt:
        """Encrypt `text` to exactly the devices of `channel` in the room's current roster,
        sign it and send it.

        The receipt is checked: the server's checkpoint is consistent with what
        this client verified before, and the message's leaf is included in it.
        """
        self._life.use()
        size = len(text.encode("utf-8"))
        if size > MAX_TEXT_BYTES:
            raise ProtocolError(
                f"the message is {size} bytes, over the {MAX_TEXT_BYTES} a message holds: "
                "send a longer text as a document (parley send ROOM --file FILE)"
            )
        with self._member_of(room_id):
            return await self._sender.send(
                room_id, {"type": "text", "text": text}, channel=channel, message_id=message_id
            )

    @contextmanager
    def _member_of(self, room_id: str) -> Iterator[None]:
        """Say "you were removed", not "no such room", where this device verified a
        roster of the room before: the server shows a room only to its members."""
        try:
            yield
        except NotFoundError as exc:
            head = self.keystore.roster_head(room_id)
            if head is None or "room" not in exc.message:
                raise
            raise PermissionDeniedError(
                403,
                "removed",
                f"you were removed from room {room_id}: the server no longer shows it to "
                f"you, and this device last verified its roster version {head.version}",
            ) from exc

    async def relay(self, room_id: str, seq: int, *, to: str, edit: str | None = None) -> Receipt:
        """(Mediators) pass message `seq` on to channel `to`, re-encrypted and signed by you.

        The relay carries the original's channel, sender and the hash of what its
        sender signed, so anyone who can read both can check what was passed on
        and whether (`edit`) it was changed.
        """
        self._life.use()
        role = self.keystore.state.role
        if role is not Role.MEDIATOR:  # said before anything the room's state could say
            article = "an" if role.value[0] in "aeiou" else "a"
            raise NotPermitted(
                Refusal.WRONG_SIDE, f"only mediators relay messages; you are {article} {role.value}"
            )
        with self._member_of(room_id):
            original = await self._reader.message_at(room_id, seq)
            return await self._sender.send(room_id, relay_content(original, edit), channel=to)

    async def messages(
        self, room_id: str, *, after: int = 0, follow: bool = False, channel: str | None = None
    ) -> AsyncIterator[Message]:
        """Verified, decrypted messages after sequence number `after` (only `channel`'s,
        if given).

        Every event is checked before it is handed over: its leaf is in a
        checkpoint signed by the pinned log key and consistent with every
        checkpoint verified before; then the roster chain, the recipients, the
        signature and the sender's view of the log. With `follow`, keep
        streaming over the WebSocket, reconnecting and resuming from the last
        event seen: no gap and no duplicate.
        """
        self._life.use()
        with self._member_of(room_id):
            async for message in self._reader.messages(room_id, after=after, follow=follow):
                self._life.use()
                if channel is None or message.channel == channel:
                    yield message

    async def events(
        self, room_id: str, *, after: int = 0, follow: bool = False
    ) -> AsyncIterator[Message | RoomChange]:
        """`messages`, and between them the mediators' changes to the room: moderation
        acts and roster versions (`RoomChange`), verified as messages are."""
        self._life.use()
        with self._member_of(room_id):
            async for event in self._reader.events(room_id, after=after, follow=follow):
                self._life.use()
                yield event

    # --- receipts -------------------------------------------------------------------

    async def acknowledge(self, room_id: str, seq: int) -> Acknowledgement:
        """Sign and log a receipt for event `seq`: this account received and decrypted
        it (this device must be able to read it). Instruments, disclosures and
        documents are acknowledged automatically when read; every message too if the
        profile's `auto_receipts` setting is on."""
        self._life.use()
        return await self._receipts.acknowledge(room_id, seq)

    async def receipts(self, room_id: str, seq: int | None = None) -> list[Acknowledgement]:
        """Every logged receipt of the room (for event `seq` only, if given): who
        acknowledged what and when, checked and replayed from the log."""
        self._life.use()
        return await self._receipts.logged(room_id, seq)

    def receipts_seen(self, room_id: str, seq: int | None = None) -> list[Acknowledgement]:
        """The receipts this client has read so far (no request): for printing them
        beside messages as they are read."""
        self._life.use()
        return self._receipts.seen(room_id, seq)

    # --- excerpts -------------------------------------------------------------------

    async def excerpt(self, room_id: str, seqs: Sequence[int]) -> Excerpt:
        """A verifiable excerpt of the messages at `seqs`, for an outsider: each envelope
        with its content key (that message's only), the rosters, directory entries,
        checkpoints and inclusion proofs that prove it; checked before it is returned."""
        self._life.use()
        return await self._excerpts.excerpt(room_id, seqs)
