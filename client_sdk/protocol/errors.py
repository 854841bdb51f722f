"""Every exception the Parley SDK raises, in one tree; catch `ParleyError` to catch them all.

They live here, under `client_sdk.protocol`, because the protocol code raises
them and the server may import only `client_sdk.protocol` from the SDK::

    ParleyError                     the one base class SDK users catch
    ├── ProtocolError               bytes or JSON that do not parse as the protocol says
    ├── VerificationError           a signature, hash, proof or policy check failed (``kind``)
    │   ├── UntrustedKeyError       a contact's key is unknown-and-required or changed
    │   ├── RevokedDeviceError      a roster lists a revoked device: re-key before sealing
    │   ├── AuditFailure            a log failed its audit (first failing index, if any)
    │   └── ServerMisbehaved        what the server served proves it did one of these:
    │       ├── WithheldError       withheld events it had logged (``withheld``)
    │       ├── RolledBackError     rolled a log back below a size seen (``rolled-back``)
    │       ├── ForkedError         showed two histories of one log (``forked``)
    │       ├── KeySubstitutedError served a key no owner certified (``key-substituted``)
    │       ├── RevokedServedError  served a revoked device as in use (``revoked-device``)
    │       ├── MemberAddedError    added a member no mediator signed (``member-added``)
    │       ├── StaleRosterError    served a roster a newer one replaced (``stale-roster``)
    │       ├── DroppedEventError   left an event out of a room's sequence (``dropped``)
    │       ├── ReorderedError      served events out of order (``reordered``)
    │       ├── ReplayedError       served an event again as a new one (``replayed``)
    │       ├── AlteredError        changed what a member signed or sealed (``altered``)
    │       └── UnwitnessedError    a checkpoint without its cosignatures (``unwitnessed``)
    ├── NotPermitted                an act the room's state does not allow (``reason``)
    ├── KeystoreError               no keystore, wrong passphrase, damaged file
    ├── ClientClosedError           this client was closed; open a new one
    ├── TransportError              the server could not be reached, or the connection broke
    ├── APIError                    the server refused the request (status, code, request_id)
    │   ├── InvalidRequestError     400, 422
    │   ├── AuthenticationError     401
    │   ├── PermissionDeniedError   403
    │   ├── NotFoundError           404
    │   ├── ConflictError           409 (closed room, stale roster, used id)
    │   ├── TooLargeError           413
    │   └── RateLimitedError        429
    ├── WitnessStateError           the witness state file is unreadable or damaged
    └── WitnessError                the witness refuses (tlog-witness status in ``status``)
        ├── WitnessRequestError     400 malformed, or a checkpoint smaller than the old size
        ├── WitnessSignatureError   403 no signature by the pinned log key verifies
        ├── WitnessUnknownLogError  404 the witness does not follow this origin
        ├── WitnessConflictError    409 old size is not the cosigned size
        └── WitnessProofError       422 not consistent with the cosigned checkpoint

`api_error` picks the `APIError` subclass for an error answer's status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from client_sdk.protocol.mediation import Refusal

__all__ = [
    "SIZE_CONTENT_TYPE",
    "APIError",
    "AlteredError",
    "AuditFailure",
    "AuthenticationError",
    "ClientClosedError",
    "ConflictError",
    "DroppedEventError",
    "ForkedError",
    "InvalidRequestError",
    "KeySubstitutedError",
    "KeystoreError",
    "MemberAddedError",
    "NotFoundError",
    "NotPermitted",
    "ParleyError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitedError",
    "ReorderedError",
    "ReplayedError",
    "RevokedDeviceError",
    "RevokedServedError",
    "RolledBackError",
    "ServerMisbehaved",
    "StaleRosterError",
    "TooLargeError",
    "TransportError",
    "UntrustedKeyError",
    "UnwitnessedError",
    "VerificationError",
    "WithheldError",
    "WitnessConflictError",
    "WitnessError",
    "WitnessProofError",
    "WitnessRequestError",
    "WitnessSignatureError",
    "WitnessStateError",
    "WitnessUnknownLogError",
    "api_error",
]

SIZE_CONTENT_TYPE: Final = "text/x.tlog.size"
"""The media type of a witness's 409 answer: the cosigned size in decimal and a newline."""


class ParleyError(Exception):
    """Base class of every error the Parley SDK raises."""


class ProtocolError(ParleyError):
    """Input that does not have the shape the protocol requires."""


class VerificationError(ParleyError):
    """A cryptographic or policy check failed; the message says which and why.

    `kind` names the failure in one word for programs (the CLI's ``--json``
    errors carry it): ``unverified`` for a check that proves nothing more, or
    what a `ServerMisbehaved` subclass says the server did.
    """

    kind: str = "unverified"


class UntrustedKeyError(VerificationError):
    """A contact's account key is not trusted; the message says why and what to do."""


class RevokedDeviceError(VerificationError):
    """The room's roster lists a device that was revoked, so nothing is sealed to it:
    a mediator must re-key the room (a new roster version without it) first."""

    def __init__(self, *, room_id: str, account_id: str, device_id: str, authority: str) -> None:
        by = "the operator" if authority == "operator" else "its account"
        super().__init__(
            f"room {room_id}: device {device_id} of account {account_id} was revoked by {by}; "
            f"nothing is sealed to it until a mediator re-keys the room "
            f"(parley room rekey {room_id})"
        )
        self.room_id = room_id
        self.account_id = account_id
        self.device_id = device_id
        self.authority = authority


class AuditFailure(VerificationError):
    """A log failed its audit; `index` is the first entry that fails, when one does, and
    `kind` what the failure shows the server did, where it shows one (``forked``,
    ``unwitnessed``...)."""

    def __init__(
        self,
        log_id: str,
        reason: str,
        *,
        index: int | None = None,
        last: int | None = None,
        kind: str | None = None,
    ) -> None:
        if index is None:
            where = ""
        elif last is None or last == index:
            where = f" index {index}"
        else:
            where = f" index {index}..{last}"
        super().__init__(f"log {log_id}{where}: {reason}")
        self.log_id = log_id
        self.index = index
        self.last = last
        self.reason = reason
        if kind is not None:
            self.kind = kind


class ServerMisbehaved(VerificationError):
    """What the server served proves it misbehaved; the message says what it did, in
    words a mediator understands, then the evidence."""

    kind = "misbehaved"
    summary = "the server misbehaved"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.summary}: {detail}")
        self.detail = detail


class WithheldError(ServerMisbehaved):
    """The server withheld events: it showed less of a log than it had shown before, or
    fewer events than its own signed checkpoint covers."""

    kind = "withheld"
    summary = "the server is withholding events"


class RolledBackError(ServerMisbehaved):
    """The server's log is now smaller than a checkpoint this device verified."""

    kind = "rolled-back"
    summary = "the server rolled back the log"


class ForkedError(ServerMisbehaved):
    """The server showed two histories of one log (to this device over time, or to two
    members): two roots for one size, or checkpoints that are not consistent."""

    kind = "forked"
    summary = "the server forked the log"


class KeySubstitutedError(ServerMisbehaved):
    """The server served a key that its owner's account key (or the pinned log key) does
    not vouch for."""

    kind = "key-substituted"
    summary = "the server substituted a key"


class RevokedServedError(ServerMisbehaved):
    """The server served a device as in use that a revocation in its own directory log
    ends."""

    kind = "revoked-device"
    summary = "the server served a revoked device as current"


class MemberAddedError(ServerMisbehaved):
    """The server added a member, device or recipient that no mediator of the room
    signed into its roster."""

    kind = "member-added"
    summary = "the server added a member"


class StaleRosterError(ServerMisbehaved):
    """The server served a roster after a newer one took effect: a sender sealed to it,
    or was about to."""

    kind = "stale-roster"
    summary = "the server served a stale roster"


class DroppedEventError(ServerMisbehaved):
    """The server left events out of a room's sequence."""

    kind = "dropped"
    summary = "the server dropped an event"


class ReorderedError(ServerMisbehaved):
    """The server served a room's events out of order."""

    kind = "reordered"
    summary = "the server reordered events"


class ReplayedError(ServerMisbehaved):
    """The server served an event again as a new one."""

    kind = "replayed"
    summary = "the server replayed an old event"


class AlteredError(ServerMisbehaved):
    """The server changed what a member signed or sealed (a header, a key wrap, a
    ciphertext, a leaf)."""

    kind = "altered"
    summary = "the server altered an event"


class UnwitnessedError(ServerMisbehaved):
    """A checkpoint lacks the witness cosignatures required of it: the server stripped
    them, or never had the log witnessed."""

    kind = "unwitnessed"
    summary = "the server served a checkpoint without its witnesses' cosignatures"


class NotPermitted(ParleyError):
    """An act the room's state does not allow; `reason` says which rule, the message why."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class KeystoreError(ParleyError):
    """The keystore is missing, damaged, or cannot be decrypted (wrong passphrase or modified)."""


class ClientClosedError(ParleyError):
    """This client was closed; open a new one."""


class TransportError(ParleyError):
    """The server could not be reached or the connection broke."""


class APIError(ParleyError):
    """The server answered with an error body."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        """The server's id of the request (its ``X-Request-Id``), to find its log line."""


class InvalidRequestError(APIError):
    """The server found the request malformed or invalid (400, 422)."""


class AuthenticationError(APIError):
    """Not authenticated (401)."""


class PermissionDeniedError(APIError):
    """Authenticated but not allowed (403)."""


class NotFoundError(APIError):
    """No such thing, or not visible to this account (404)."""


class ConflictError(APIError):
    """The request clashes with the current state (409)."""


class TooLargeError(APIError):
    """Over a server limit (413)."""


class RateLimitedError(APIError):
    """Too many requests (429)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def api_error(status: int, code: str, message: str, request_id: str | None = None) -> APIError:
    """The exception for an error answer: the `APIError` subclass for `status`."""
    return _BY_STATUS.get(status, APIError)(status, code, message, request_id)


class WitnessStateError(ParleyError):
    """The witness state file cannot be read, or is damaged."""


class WitnessError(ParleyError):
    """The witness refuses a request; `status` is the tlog-witness HTTP status."""

    status = 400

    @property
    def content_type(self) -> str:
        """The media type of the answer body."""
        return "text/plain; charset=utf-8"

    @property
    def body(self) -> str:
        """The answer body: the reason, on one line."""
        return f"{self}\n"


class WitnessRequestError(WitnessError):
    """400: the request is malformed, or its checkpoint is smaller than its old size."""

    status = 400


class WitnessSignatureError(WitnessError):
    """403: no signature on the checkpoint verifies with the pinned log key."""

    status = 403


class WitnessUnknownLogError(WitnessError):
    """404: the witness does not follow a log with this origin."""

    status = 404


class WitnessConflictError(WitnessError):
    """409: the old size is not the size cosigned last.

    `size` is the size the witness cosigned last; a client whose view is
    stale retries with it as the old size.
    """

    status = 409

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size

    @property
    def content_type(self) -> str:
        """``text/x.tlog.size``, as the specification requires."""
        return SIZE_CONTENT_TYPE

    @property
    def body(self) -> str:
        """The cosigned size in decimal, then a newline."""
        return f"{self.size}\n"


class WitnessProofError(WitnessError):
    """422: the checkpoint is not consistent with the one cosigned (a forked or rewritten log).

    The consistency proof does not verify, or is not empty from size 0; the
    cosigned size has another root; or a size-0 checkpoint lacks the empty
    tree's root.
    """

    status = 422
