"""Readiness: whether this process should be sent traffic.

Each check is named and answers ``ok`` or why not: the database answers a
query (within `DATABASE_TIMEOUT_SECONDS`), its schema is at the migrations'
head, the checkpoint-signing log key is loaded, and the process is not
shutting down.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import text

from server.log.signer import CheckpointSigner
from server.realtime.hub import RoomHub
from server.storage.database import Database
from server.storage.migrate import current_revisions, head_revisions

DATABASE_TIMEOUT_SECONDS = 2.0
OK = "ok"


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each check's outcome: ``ok``, or a sentence saying what is wrong."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        """Whether every check passed."""
        return all(outcome == OK for outcome in self.checks.values())

    @property
    def failed(self) -> list[str]:
        """The names of the checks that did not pass."""
        return [name for name, outcome in self.checks.items() if outcome != OK]


class HealthService:
    """Answers readiness probes."""

    def __init__(self, database: Database, signer: CheckpointSigner | None, hub: RoomHub) -> None:
        self.database = database
        self.signer = signer
        self.hub = hub
        self.heads = head_revisions()

    async def readiness(self) -> Readiness:
        """Run every check (none raises: a failure is an outcome)."""
        database, migrations = await self._database()
        return Readiness(
            {
                "database": database,
                "migrations": migrations,
                "log_key": OK if self.signer is not None else "no log signing key loaded",
                "accepting": "shutting down" if self.hub.closing else OK,
            }
        )

    async def _database(self) -> tuple[str, str]:
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
                async with self.database.read() as conn:
                    await conn.execute(text("SELECT 1"))
                    current = await current_revisions(conn)
        except TimeoutError:
            return f"no answer within {DATABASE_TIMEOUT_SECONDS:g} s", "unknown"
        except Exception as exc:  # any driver error means "not reachable"
            return f"unreachable: {type(exc).__name__}", "unknown"
        if current != self.heads:
            at = ", ".join(sorted(current)) or "empty"
            return OK, f"schema at {at}, code expects {', '.join(sorted(self.heads))}"
        return OK, OK
