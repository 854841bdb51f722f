"""The async client: `ParleyClient` and the result types it returns.

`facade.py` holds the client a user constructs; the other modules are its parts
(HTTP session, directory of verified accounts, room chains, log verifier,
sender, reader, stream), each given what it needs when it is built.
"""

from client_sdk.client.facade import (
    DAY_MS,
    DEFAULT_KEY_LIFETIME_MS,
    RETIRED_KEY_GRACE_MS,
    ROTATE_AFTER_MS,
    Member,
    Message,
    ParleyClient,
    Receipt,
    Relay,
    Room,
    RoomStateView,
)

__all__ = [
    "DAY_MS",
    "DEFAULT_KEY_LIFETIME_MS",
    "RETIRED_KEY_GRACE_MS",
    "ROTATE_AFTER_MS",
    "Member",
    "Message",
    "ParleyClient",
    "Receipt",
    "Relay",
    "Room",
    "RoomStateView",
]
