"""The Parley client SDK: an async client, the local keystore, and the `parley` command.

Every error it raises is a `ParleyError`; `client_sdk.protocol.errors` draws the tree.

The client and the keystore are imported on first use (PEP 562), so a program that
imports only part of the SDK (`parley --help`, the server's protocol code) does not
pay for all of it; ``from client_sdk import ParleyClient`` works as before.
"""

from typing import TYPE_CHECKING

from client_sdk._lazy import lazy_names
from client_sdk.protocol.errors import (
    APIError,
    AuditFailure,
    AuthenticationError,
    ClientClosedError,
    ConflictError,
    InvalidRequestError,
    KeystoreError,
    NotFoundError,
    ParleyError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    RevokedDeviceError,
    TooLargeError,
    TransportError,
    UntrustedKeyError,
    VerificationError,
    WitnessError,
)

if TYPE_CHECKING:
    from client_sdk.client import Acknowledgement, Member, Message, ParleyClient, Receipt, Room
    from client_sdk.keystore import Keystore

_LAZY = {
    "Acknowledgement": "client_sdk.client",
    "Keystore": "client_sdk.keystore",
    "Member": "client_sdk.client",
    "Message": "client_sdk.client",
    "ParleyClient": "client_sdk.client",
    "Receipt": "client_sdk.client",
    "Room": "client_sdk.client",
}


__getattr__ = lazy_names(__name__, _LAZY, globals())


__all__ = [
    "APIError",
    "Acknowledgement",
    "AuditFailure",
    "AuthenticationError",
    "ClientClosedError",
    "ConflictError",
    "InvalidRequestError",
    "Keystore",
    "KeystoreError",
    "Member",
    "Message",
    "NotFoundError",
    "ParleyClient",
    "ParleyError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitedError",
    "Receipt",
    "RevokedDeviceError",
    "Room",
    "TooLargeError",
    "TransportError",
    "UntrustedKeyError",
    "VerificationError",
    "WitnessError",
]
