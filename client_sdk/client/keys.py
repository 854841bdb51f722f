"""This device's encryption keys: weekly rotation, published to the directory log, and
the purge of retired private keys (which bounds what a stolen device can read back)."""

from __future__ import annotations

import asyncio

from client_sdk.client.helpers import Clock, dump, encryption_cert
from client_sdk.client.http import HttpSession
from client_sdk.client.logs import LogVerifier
from client_sdk.keystore import Keystore
from client_sdk.protocol.keys import EncryptionKey, key_id
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.wire.logs import LoggedOut

DAY_MS = 24 * 3600 * 1000
"""One day in milliseconds, the unit of every time the SDK keeps."""
DEFAULT_KEY_LIFETIME_MS = 14 * DAY_MS
"""How long a new encryption key's certificate is valid (``not_after``)."""
ROTATE_AFTER_MS = 7 * DAY_MS
"""Encryption keys are replaced weekly..."""
RETIRED_KEY_GRACE_MS = 7 * DAY_MS
"""...and a replaced private key is deleted a week later, bounding what a stolen
device can decrypt from the past."""


class KeyRotation:
    """Rotates and purges this device's encryption keys."""

    def __init__(
        self, http: HttpSession, logs: LogVerifier, keystore: Keystore, clock: Clock
    ) -> None:
        self._http = http
        self._logs = logs
        self._keystore = keystore
        self._clock = clock
        self._lock = asyncio.Lock()
        """Concurrent sends and reads find a rotation due together; one publishes it."""

    async def maintain(self) -> list[str]:
        """Rotate the encryption key when it is due and purge retired private keys;
        return the ids of purged keys."""
        async with self._lock:
            now = self._clock()
            current = self._keystore.current_encryption_key()
            if (
                now - current.created_at >= ROTATE_AFTER_MS
                or current.not_after - now < DAY_MS
                or current.private.legacy  # from before X-Wing seeds: replace it now
            ):
                await self.rotate()
            return self._keystore.purge_retired(now, RETIRED_KEY_GRACE_MS)

    async def rotate(self, *, lifetime_ms: int = DEFAULT_KEY_LIFETIME_MS) -> str:
        """Publish a new encryption key; the old one is kept for a grace period.

        The private key is in the keystore before its certificate leaves: a
        process that dies after publishing can still read what is sealed to it.
        """
        state = self._keystore.state
        now = self._clock()
        enc_key = EncryptionKey.generate()
        record = self._keystore.stage_encryption_key(enc_key, now + lifetime_ms, now)
        cert = encryption_cert(
            state.account_key, state.account_id, state.device_id, enc_key, now, now + lifetime_ms
        )
        logged = await self._http.call(
            LoggedOut, "POST", "/v1/devices/me/encryption-keys", json={"cert": dump(cert)}
        )
        await self._logs.check_logged(
            DIRECTORY_LOG_ID,
            logged,
            kind="encryption-key",
            actor_device=key_id(state.account_key.public_bytes()),
            payload_hash=cert.body_hash(),
            signature=cert.signature,
        )
        self._keystore.publish_encryption_key(record.key_id)
        return record.key_id
