"""Checking a received dossier disclosure against its commitment in the room's log.

The reader has already checked both events (log inclusion against a pinned
checkpoint, roster, recipients, sender signature) before they reach here.
What is left, each failure a reason the disclosure is refused for:

- the commit event is a ``dossier-commit`` of this dossier, earlier in the
  room, and the disclosure's sender is the commit's sender (the issuer);
- the presentation verifies (`verify_presentation`): the issuer signature
  with the commit sender's device key as the verified directory certifies
  it, the JWT byte for byte the committed one, committed for this room and
  this issuer, every digest and Disclosure; the JWT's ``kid`` is the
  commit's sending device.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from client_sdk.client.dossier_models import ReceivedDisclosure, SeenCommit
from client_sdk.client.models import Message
from client_sdk.client.verify import VerifiedAccount
from client_sdk.protocol.content import DossierCommit, DossierDisclosure, parse_content
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.sdjwt import verify_presentation

AccountLookup = Callable[[str], Awaitable[VerifiedAccount]]


def seen_commit(message: Message) -> SeenCommit | None:
    """The commitment `message` carries, if it is a well-formed ``dossier-commit``."""
    try:
        content = parse_content(message.content)
    except ProtocolError:
        return None
    if not isinstance(content, DossierCommit):
        return None
    return SeenCommit(
        room_id=message.room_id,
        seq=message.seq,
        dossier_id=content.dossier_id,
        title=content.title,
        sender_account_id=message.sender_account_id,
        sender_name=message.sender_name,
        sender_device=message.sender_device,
        committed_at=message.server_time,
        jwt=content.jwt,
    )


def disclosure_content(message: Message) -> DossierDisclosure | None:
    """The ``dossier-disclosure`` content of `message`, or None for any other type.

    Raises `ProtocolError` for a disclosure that is malformed.
    """
    if message.content.get("type") != "dossier-disclosure":
        return None
    content = parse_content(message.content)
    assert isinstance(content, DossierDisclosure)  # parse_content dispatches on type
    return content


async def check_disclosure(
    message: Message,
    commit: SeenCommit | None,
    account: AccountLookup,
) -> ReceivedDisclosure:
    """Verify the disclosure `message` carries against `commit` (the event it names,
    None if that is not a commitment this device could read); never raises for a bad
    presentation: it comes back refused, with the reason."""
    try:
        content = disclosure_content(message)
    except ProtocolError as exc:
        return _refused(message, None, None, str(exc))
    if content is None:
        raise ProtocolError(f"event {message.seq} is not a dossier disclosure")
    try:
        return await _verified(message, content, commit, account)
    except (VerificationError, ProtocolError) as exc:
        return _refused(message, content, commit, str(exc))


async def _verified(
    message: Message,
    content: DossierDisclosure,
    commit: SeenCommit | None,
    account: AccountLookup,
) -> ReceivedDisclosure:
    if commit is None or commit.seq != content.commit_seq:
        raise VerificationError(
            f"event {content.commit_seq} is not a dossier commitment in room {message.room_id}"
        )
    if commit.seq >= message.seq:
        raise VerificationError("the commitment does not precede the disclosure")
    if commit.dossier_id != content.dossier_id:
        raise VerificationError(f"event {commit.seq} commits another dossier")
    if commit.sender_account_id != message.sender_account_id:
        raise VerificationError(
            f"disclosed by {message.sender_name}, but committed by {commit.sender_name}"
        )
    issuer = await account(commit.sender_account_id)
    device = issuer.certified_device(commit.sender_device)
    if device is None:
        raise VerificationError(f"the issuer's device {commit.sender_device} is not certified")
    verified = verify_presentation(
        content.presentation,
        issuer_key=device.signing_key,
        room_id=message.room_id,
        committed_jwt=commit.jwt,
        issuer=commit.sender_account_id,
    )
    if verified.device_id != commit.sender_device:
        raise VerificationError("the JWT names another device than the one that committed it")
    if verified.dossier_id != content.dossier_id:
        raise VerificationError("the JWT is another dossier's")
    return ReceivedDisclosure(
        room_id=message.room_id,
        seq=message.seq,
        channel=message.channel,
        dossier_id=content.dossier_id,
        phase=content.phase,
        sender_account_id=message.sender_account_id,
        sender_name=message.sender_name,
        disclosed_at=message.server_time,
        commit_seq=commit.seq,
        title=verified.title,
        committed_at=commit.committed_at,
        issuer_key=device.signing_key,
        records=verified.records,
        refused=None,
    )


def _refused(
    message: Message,
    content: DossierDisclosure | None,
    commit: SeenCommit | None,
    reason: str,
) -> ReceivedDisclosure:
    dossier_id = content.dossier_id if content else str(message.content.get("dossier_id", "?"))
    return ReceivedDisclosure(
        room_id=message.room_id,
        seq=message.seq,
        channel=message.channel,
        dossier_id=dossier_id,
        phase=content.phase if content else None,
        sender_account_id=message.sender_account_id,
        sender_name=message.sender_name,
        disclosed_at=message.server_time,
        commit_seq=content.commit_seq if content else 0,
        title=commit.title if commit else None,
        committed_at=commit.committed_at if commit else None,
        issuer_key=None,
        records=(),
        refused=reason,
    )
