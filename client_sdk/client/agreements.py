"""Agreements (docs/design.md §7): proposing a document for signature, signing the exact
hash of what this device downloaded and opened, and showing who signed which hash
when, replayed from the room's log by the same rules the server applies.

A proposal's document is uploaded like any document (`upload_document`), its
chunks sealed under a fresh content key that then seals the proposal's sealed
part (title and document reference, to plenary), so whoever reads the proposal
can open the file. The offline check of a signed agreement against an audit
bundle is `client_sdk.audit.verify_agreement`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from client_sdk.client.agreement_models import AgreementView, Names, agreement_view
from client_sdk.client.chains import RoomChain, RoomChains
from client_sdk.client.documents import fetch_document, guess_type, unwrap
from client_sdk.client.helpers import Clock
from client_sdk.client.http import HttpSession
from client_sdk.client.instruments import InstrumentActs
from client_sdk.client.models import Message
from client_sdk.client.reader import Reader
from client_sdk.client.uploads import Progress, create_upload, noop, upload_document
from client_sdk.keystore import Keystore
from client_sdk.protocol.documents import DEFAULT_CHUNK_SIZE
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import new_content_key
from client_sdk.protocol.errors import NotFoundError, ProtocolError, VerificationError
from client_sdk.protocol.instruments.agreements import (
    Agreement,
    AgreementContent,
    AgreementProposeAct,
    AgreementSignAct,
    RequiredSigner,
    default_signers,
)
from client_sdk.protocol.instruments.base import Context
from client_sdk.protocol.mediation import PLENARY
from client_sdk.protocol.models import Name, Side
from client_sdk.protocol.statements import Roster


class Agreements:
    """This device's proposals and signatures, and every agreement of a room as the
    log shows it."""

    def __init__(
        self,
        http: HttpSession,
        acts: InstrumentActs,
        reader: Reader,
        chains: RoomChains,
        keystore: Keystore,
        clock: Clock,
    ) -> None:
        self._http = http
        self._acts = acts
        self._reader = reader
        self._chains = chains
        self._keystore = keystore
        self._clock = clock

    async def propose(
        self,
        room_id: str,
        path: Path,
        *,
        title: str,
        signers: list[str] | None = None,
        supersedes: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: Progress = noop,
    ) -> AgreementView:
        """Upload the file at `path` encrypted to the room and propose it for signature.

        `signers` names the accounts that must sign (default: one account per
        party side plus the mediator); `supersedes` names an earlier proposal it
        replaces. Everything the rules would refuse is refused before the upload.
        """
        await self._reader.replay(room_id)
        roster, _ = await self._chains.current(room_id)
        required = _required(roster, signers)
        self._judge_here(
            room_id,
            roster,
            AgreementProposeAct(
                **self._draft(room_id),
                document_sha256=b64e(bytes(32)),  # the hash is not known yet: not judged
                signers=required,
                supersedes=supersedes,
            ),
        )
        try:
            TypeAdapter(Name).validate_python(title)
        except ValidationError as exc:
            raise ProtocolError(f"invalid title: {exc.errors()[0]['msg']}") from exc
        path, size = _file(path)
        content_key = new_content_key()
        upload = await create_upload(self._http, room_id, size, chunk_size)
        document = await upload_document(
            self._http,
            path,
            upload,
            content_key=content_key,
            file_id=b64e(secrets.token_bytes(16)),
            name=path.name,
            media_type=guess_type(path.name),
            progress=progress,
        )
        content = AgreementContent(title=title, document=document)
        act, _ = await self._acts.submit(
            room_id,
            lambda **common: AgreementProposeAct(
                document_sha256=document.plaintext_sha256,
                signers=required,
                supersedes=supersedes,
                **common,
            ),
            sealed=(PLENARY, content.model_dump(mode="json")),
            roster=roster,
            content_key=content_key,
        )
        return await self._logged(room_id, act.instrument_id, content)

    async def sign(
        self,
        room_id: str,
        agreement_id: str,
        *,
        output: Path | None = None,
        progress: Progress = noop,
    ) -> AgreementView:
        """Download the agreement's document, check every chunk and its hash against the
        proposal, and sign that hash; keep the copy signed at `output` if given."""
        proposals = await self._read(room_id)
        chain = self._chains.chain(room_id)
        state = _known(chain, agreement_id)
        roster, _ = await self._chains.current(room_id)
        me = self._keystore.state.account_id
        self._judge_here(
            room_id,
            roster,
            AgreementSignAct(
                **self._draft(room_id),
                agreement_id=agreement_id,
                account_id=me,
                document_sha256=state.document_sha256,
            ),
        )
        message = proposals.get(agreement_id)
        content, key = self._document(room_id, state, message)
        await fetch_document(
            self._http, room_id, content.document, key, output=output, progress=progress
        )
        await self._acts.submit(
            room_id,
            lambda **common: AgreementSignAct(
                agreement_id=agreement_id,
                account_id=me,
                document_sha256=content.document.plaintext_sha256,
                **common,
            ),
            roster=roster,
        )
        return await self._logged(room_id, agreement_id, content)

    async def download(
        self, room_id: str, agreement_id: str, output: Path, *, progress: Progress = noop
    ) -> AgreementView:
        """Write the agreement's document to `output`, every chunk and its hash checked
        against the proposal."""
        proposals = await self._read(room_id)
        state = _known(self._chains.chain(room_id), agreement_id)
        message = proposals.get(agreement_id)
        content, key = self._document(room_id, state, message)
        await fetch_document(
            self._http, room_id, content.document, key, output=output, progress=progress
        )
        return self._view(room_id, state, message)

    async def show(self, room_id: str, agreement_id: str) -> AgreementView:
        """One agreement: who signed which hash and when, and whether it is complete."""
        proposals = await self._read(room_id)
        state = _known(self._chains.chain(room_id), agreement_id)
        return self._view(room_id, state, proposals.get(agreement_id))

    async def list(self, room_id: str) -> list[AgreementView]:
        """Every agreement of the room, in the order proposed."""
        proposals = await self._read(room_id)
        chain = self._chains.chain(room_id)
        return [
            self._view(room_id, state, proposals.get(state.agreement_id))
            for state in chain.ledger.agreements()
        ]

    async def _read(self, room_id: str) -> dict[str, Message]:
        """Read the room from its first event (the ledger is then replayed in full);
        the proposals this device opened, by agreement id."""
        found: dict[str, Message] = {}
        async for message in self._reader.messages(room_id):
            if isinstance(message.instrument, AgreementProposeAct):
                found[message.instrument.instrument_id] = message
        return found

    def _document(
        self, room_id: str, state: Agreement, message: Message | None
    ) -> tuple[AgreementContent, bytes]:
        """The proposal's document reference, checked against the hash it names, and the
        content key its chunks are sealed under."""
        where = f"room {room_id}: agreement {state.agreement_id}"
        if message is None or message.instrument is None or message.instrument.sealed is None:
            raise VerificationError(f"{where}: this device cannot open its proposal")
        content = _content(message)
        if content.document.plaintext_sha256 != state.document_sha256:
            raise VerificationError(f"{where}: its document is not the one its hash names")
        return content, unwrap(self._keystore.state, message.instrument.sealed)

    async def _logged(
        self, room_id: str, agreement_id: str, content: AgreementContent
    ) -> AgreementView:
        """The agreement after this device's act, replayed from where the room was read
        (without reading it all again)."""
        await self._reader.replay(room_id)
        state = _known(self._chains.chain(room_id), agreement_id)
        return agreement_view(
            room_id,
            state,
            _names(self._chains.chain(room_id)),
            title=content.title,
            document=content.document,
        )

    def _view(self, room_id: str, state: Agreement, message: Message | None) -> AgreementView:
        chain = self._chains.chain(room_id)
        title, document = None, None
        if message is not None and message.content.get("type") == "agreement":
            content = _content(message)
            title, document = content.title, content.document
        return agreement_view(room_id, state, _names(chain), title=title, document=document)

    def _draft(self, room_id: str) -> dict[str, Any]:
        """The common fields of an act judged here before it is built for real."""
        return {
            "room_id": room_id,
            "instrument_id": "draft",
            "roster_version": 1,
            "signer_device": self._keystore.state.device_id,
            "issued_at": self._clock(),
        }

    def _judge_here(
        self, room_id: str, roster: Roster, act: AgreementProposeAct | AgreementSignAct
    ) -> None:
        """Apply the rules to the act here first (raises `NotPermitted` as the server
        would), so nothing is uploaded or downloaded for an act that would be refused."""
        chain = self._chains.chain(room_id)
        signer = roster.member(self._keystore.state.account_id)
        if signer is None:
            raise ProtocolError(f"room {room_id}: this account is not a member")
        context = Context(
            room_id=room_id,
            roster=roster,
            signer=signer,
            seq=chain.position + 1,
            server_time=self._clock(),
        )
        act.apply(chain.ledger.view(act.keys()), context)


def _required(roster: Roster, accounts: list[str] | None) -> list[RequiredSigner]:
    if not accounts:
        return default_signers(roster)
    required = []
    for account_id in accounts:
        member = roster.member(account_id)
        if member is None:
            raise ProtocolError(f"signer {account_id} is not a member of the room")
        if member.side is Side.OBSERVER:
            raise ProtocolError(f"signer {account_id} is an observer: observers do not sign")
        required.append(RequiredSigner(side=member.side, account_id=account_id))
    if len({s.account_id for s in required}) != len(required):
        raise ProtocolError("an account is named twice among the signers")
    return required


def _file(path: Path) -> tuple[Path, int]:
    try:
        resolved = path.resolve(strict=True)
        return resolved, resolved.stat().st_size
    except OSError as exc:
        raise ProtocolError(f"cannot read {path}: {exc.strerror}") from exc


def _known(chain: RoomChain, agreement_id: str) -> Agreement:
    state = chain.ledger.agreement(agreement_id)
    if state is None:
        raise NotFoundError(404, "not_found", f"there is no agreement {agreement_id} in this room")
    return state


def _content(message: Message) -> AgreementContent:
    try:
        return AgreementContent.model_validate(message.content)
    except ValidationError as exc:
        raise VerificationError(
            f"agreement {message.message_id}: its sealed part is not a proposal"
        ) from exc


def _names(chain: RoomChain) -> Names:
    names: dict[str, str] = {}
    for roster, _ in chain.rosters.values():
        for member in roster.members:
            names[member.account_id] = member.name

    def name(account_id: str) -> str:
        return names.get(account_id, account_id)

    return name
