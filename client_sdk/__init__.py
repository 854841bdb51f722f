"""The Parley client SDK: an async client, the local keystore, and the `parley` command.

Every error it raises is a `ParleyError`; see `client_sdk._errors` for the tree.
"""

from client_sdk._errors import (
    APIError,
    AuthenticationError,
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
)
from client_sdk.client import Member, Message, ParleyClient, Receipt, Room
from client_sdk.keystore import Keystore

__all__ = [
    "APIError",
    "AuthenticationError",
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
]
