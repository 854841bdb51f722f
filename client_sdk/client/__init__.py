"""The async client: `ParleyClient` and the result types it returns.

`facade.py` holds the client a user constructs; the other modules are its parts,
each given what it needs when it is built and none calling back into the client:

    http.py        HttpSession: login, requests, error answers as typed exceptions
    logs.py        LogVerifier: pinned log keys, checkpoints (monotonic, under a lock),
                   consistency, inclusion, the leaves of this device's own acts
    directory.py   Directory: accounts checked by signature and directory log, pins
    keys.py        KeyRotation: this device's encryption keys (rotate, purge)
    chains.py      RoomChains: roster chains and room state replayed from events
    reader.py      Reader: events checked in order, then opened (opening.py)
    stream.py      EventStream: the WebSocket, with reconnect and resume
    sender.py      Sender: sealing to a channel's devices, retries, receipts
    rooms.py       RoomOperations: rooms, rosters, policy, moderation, re-keying
    enrollment.py  a new device's keys registered and saved
    devices.py     Devices: this account's devices listed, revoked; link requests approved
    linking.py     a new device joining an account: request, wait, check the grant
    lifecycle.py   ClientState: unopened, opened, closed
    dossiers.py    Dossiers: commit, disclose, check disclosures (dossier_*.py)
    excerpts.py    Excerpts: verifiable excerpts for outsiders
    documents.py   Documents: files sent in sealed chunks, resumed, downloaded and checked
                   (uploads.py: the reusable sealing and upload core)
    instruments.py InstrumentActs: signing and submitting instrument acts
    receipts.py    Receipts: acknowledging what was read, listing who acknowledged what
    agreements.py  Agreements: proposing, signing the exact hash, who signed what
                   (agreement_models.py: the views, shared with the offline check)
    offers.py      Offers: sealed-offer rounds (offer_views.py checks what is read,
                   offer_store.py keeps this device's openings; sealed_file.py)

The names below are imported on first use (PEP 562): importing one part
(``client_sdk.client.reader``) loads this package first, and an eager import of
the facade here made every part, and the command line's every command, pay for
all of them (issue 11, "The command line").
"""

from typing import TYPE_CHECKING

from client_sdk._lazy import lazy_names
from client_sdk.client.keys import (  # constants, and a part every command uses
    DAY_MS,
    DEFAULT_KEY_LIFETIME_MS,
    RETIRED_KEY_GRACE_MS,
    ROTATE_AFTER_MS,
)

if TYPE_CHECKING:
    from client_sdk.client.agreement_models import (
        AgreementSignatureView,
        AgreementView,
        RequiredSignerView,
    )
    from client_sdk.client.facade import ParleyClient
    from client_sdk.client.lifecycle import ClientState
    from client_sdk.client.linking import PendingLink
    from client_sdk.client.models import (
        Acknowledgement,
        ContactFingerprint,
        Member,
        Message,
        Person,
        Receipt,
        RekeyNotice,
        Relay,
        Room,
        RoomChange,
        RoomStateView,
    )
    from client_sdk.client.offer_models import (
        OfferAct,
        OfferEvent,
        OfferRound,
        RoundSide,
        Settlement,
    )
    from client_sdk.client.vouching import MemberTrust, Trust

_LAZY = {
    "Acknowledgement": "client_sdk.client.models",
    "AgreementSignatureView": "client_sdk.client.agreement_models",
    "AgreementView": "client_sdk.client.agreement_models",
    "ClientState": "client_sdk.client.lifecycle",
    "ContactFingerprint": "client_sdk.client.models",
    "Member": "client_sdk.client.models",
    "MemberTrust": "client_sdk.client.vouching",
    "Message": "client_sdk.client.models",
    "OfferAct": "client_sdk.client.offer_models",
    "OfferEvent": "client_sdk.client.offer_models",
    "OfferRound": "client_sdk.client.offer_models",
    "ParleyClient": "client_sdk.client.facade",
    "PendingLink": "client_sdk.client.linking",
    "Person": "client_sdk.client.models",
    "Receipt": "client_sdk.client.models",
    "RekeyNotice": "client_sdk.client.models",
    "Relay": "client_sdk.client.models",
    "RequiredSignerView": "client_sdk.client.agreement_models",
    "Room": "client_sdk.client.models",
    "RoomChange": "client_sdk.client.models",
    "RoomStateView": "client_sdk.client.models",
    "RoundSide": "client_sdk.client.offer_models",
    "Settlement": "client_sdk.client.offer_models",
    "Trust": "client_sdk.client.vouching",
}


__getattr__ = lazy_names(__name__, _LAZY, globals())


__all__ = [
    "DAY_MS",
    "DEFAULT_KEY_LIFETIME_MS",
    "RETIRED_KEY_GRACE_MS",
    "ROTATE_AFTER_MS",
    "Acknowledgement",
    "AgreementSignatureView",
    "AgreementView",
    "ClientState",
    "ContactFingerprint",
    "Member",
    "MemberTrust",
    "Message",
    "OfferAct",
    "OfferEvent",
    "OfferRound",
    "ParleyClient",
    "PendingLink",
    "Person",
    "Receipt",
    "RekeyNotice",
    "Relay",
    "RequiredSignerView",
    "Room",
    "RoomChange",
    "RoomStateView",
    "RoundSide",
    "Settlement",
    "Trust",
]
