"""What an audit of a log's entries works with and concludes: the kind of log, its
origin's form, and the outcome (docs/design.md §6)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from client_sdk.audit.checks import Failure
from client_sdk.audit.signers import RosterSigner
from client_sdk.audit.tiles import Roots
from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.instruments.ledger import Ledger
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.statements import Roster


class LogKind(enum.StrEnum):
    """What a log records."""

    ROOM = "room"
    DIRECTORY = "directory"


def log_kind(log_id: str) -> LogKind:
    """The kind of the log with this id."""
    return LogKind.DIRECTORY if log_id == DIRECTORY_LOG_ID else LogKind.ROOM


def check_origin(log_id: str, origin: str) -> None:
    """Raise `VerificationError` unless `origin` is the origin a log with this id has."""
    suffix = "/directory" if log_kind(log_id) is LogKind.DIRECTORY else f"/rooms/{log_id}"
    host = origin.removesuffix(suffix)
    if host == origin or not host:
        raise VerificationError(f"log {log_id}: {origin!r} is not the origin of this log")


@dataclass(frozen=True, slots=True)
class AuditOutcome:
    """What the entries showed: the tree, the counts, and the first failure if any."""

    tree: Roots
    counts: dict[str, int]
    failure: Failure | None
    roster_signers: list[RosterSigner] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    """What the room's instrument acts built (agreements, receipts...), replayed."""
    rosters: list[Roster] = field(default_factory=list)
    """Every roster version, in order (room logs)."""
    forks: frozenset[int] = frozenset()
    """Indexes whose failure shows the server forked the log (members' gossip)."""
