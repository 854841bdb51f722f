"""The Parley client SDK: an async client, the local keystore, and the `parley` command.

Every error it raises is a `ParleyError`; `client_sdk.protocol.errors` draws the tree.
"""

from client_sdk.client import Acknowledgement, Member, Message, ParleyClient, Receipt, Room
from client_sdk.keystore import Keystore
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
    TooLargeError,
    TransportError,
    UntrustedKeyError,
    VerificationError,
    WitnessError,
)

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
    "Room",
    "TooLargeError",
    "TransportError",
    "UntrustedKeyError",
    "VerificationError",
    "WitnessError",
]
