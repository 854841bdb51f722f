"""What the end-to-end tests drive: a real `parley serve` deployment on one
backend, the people enrolled on it with the `parley` command, and a look at
everything the server keeps at rest."""

from __future__ import annotations

import base64
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from client_sdk.client import ParleyClient
from client_sdk.keystore import Keystore
from client_sdk.protocol.models import Role
from tests.conftest import PASSPHRASE, TEST_SCRYPT_N
from tests.support.cli import cli_env
from tests.support.server import ServerProcess


@dataclass(slots=True)
class Deployment:
    """One `parley serve` process on one database, which a test may crash and restart."""

    backend: str
    database_url: str
    """The server's SQLAlchemy URL (``sqlite+aiosqlite`` or ``postgresql+asyncpg``)."""
    data_dir: Path
    server: ServerProcess
    postgres_dsn: str | None = None
    """A plain libpq URL of the same database, for inspecting it (PostgreSQL only)."""

    @property
    def url(self) -> str:
        """The server's base URL (the same across restarts)."""
        return self.server.url

    @property
    def env(self) -> dict[str, str]:
        """The server's environment: what `parley admin ...` needs to reach the same database."""
        return self.server.env

    def crash(self) -> None:
        """SIGKILL the server: no shutdown, no flush, no goodbye to clients."""
        self.server.kill()

    def restart(self) -> None:
        """Start the server again on the same port and database; return once it is healthy."""
        self.server.start()

    def ensure_running(self) -> None:
        """Restart the server if an earlier test left it dead."""
        process = self.server.process
        if process is None or process.poll() is not None:
            self.server.process = None
            self.restart()

    def files_at_rest(self) -> dict[Path, bytes]:
        """Every file in the data directory (the SQLite database, -wal, -shm) and the log."""
        files = {path: path.read_bytes() for path in self.data_dir.rglob("*") if path.is_file()}
        files[self.server.log_path] = self.server.log_path.read_bytes()
        return files

    async def rows_at_rest(self) -> dict[str, str]:
        """Every row of every table, as PostgreSQL's text form (PostgreSQL only)."""
        assert self.postgres_dsn is not None
        conn = await asyncpg.connect(self.postgres_dsn)
        try:
            tables = await conn.fetch(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
            dump: dict[str, str] = {}
            for table in tables:
                name = f'"{table["table_schema"]}"."{table["table_name"]}"'
                # Identifiers come from the catalog, quoted; nothing here is user input.
                rows = await conn.fetch(f"SELECT t::text AS row FROM {name} AS t")  # noqa: S608
                dump[name] = "\n".join(str(row["row"]) for row in rows)
            return dump
        finally:
            await conn.close()


def cheapen_profile(home: Path) -> None:
    """Re-seal the keystore `parley enroll` made in `home` under the tests' cheap scrypt
    cost (`TEST_SCRYPT_N`): every later `parley` command opens it in milliseconds
    instead of the default cost's 0.1 s of CPU. The enrolment itself ran at the
    default cost, as a user's does (tests/unit/test_keystore.py pins that default)."""
    keystore = Keystore.open(home, PASSPHRASE)
    keystore.change_passphrase(PASSPHRASE, scrypt_n=TEST_SCRYPT_N)


def profile_env(home: Path) -> dict[str, str]:
    """The environment of `parley` commands run in the profile at `home`."""
    return cli_env(PARLEY_HOME=str(home), PARLEY_PASSPHRASE=PASSPHRASE)


@dataclass(frozen=True, slots=True)
class Person:
    """Someone enrolled through `parley admin enroll` and `parley enroll`, with a profile."""

    name: str
    role: Role
    home: Path
    account_id: str
    token: str
    admin_stdout: str
    """What `parley admin enroll` printed on stdout."""

    @property
    def env(self) -> dict[str, str]:
        """The environment of this person's `parley` commands."""
        return profile_env(self.home)

    def client(self) -> ParleyClient:
        """An SDK client on this person's profile (the keystore the CLI created)."""
        return ParleyClient.open(self.home, PASSPHRASE)


@dataclass(frozen=True, slots=True)
class Cast:
    """A mediator, the two parties and an outsider who is never added to a room."""

    mediator: Person
    alice: Person
    bob: Person
    outsider: Person

    @property
    def everyone(self) -> tuple[Person, ...]:
        """All four, mediator first."""
        return (self.mediator, self.alice, self.bob, self.outsider)


def random_marker() -> bytes:
    """A distinctive 24-character plaintext that occurs nowhere by chance."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24)).encode()


def encoded_forms(marker: bytes) -> dict[str, bytes]:
    """The ways `marker` could show up if stored in the clear: raw, hex, and base64 and
    base64url at each of the three byte alignments (only characters the marker alone
    determines, so a match does not depend on the bytes around it)."""
    forms = {"raw": marker, "hex": marker.hex().encode(), "HEX": marker.hex().upper().encode()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + marker)
        start = -(-8 * shift // 6)  # first character that holds marker bits only
        end = 8 * (shift + len(marker)) // 6
        forms[f"base64+{shift}"] = encoded[start:end]
        forms[f"base64url+{shift}"] = encoded[start:end].translate(bytes.maketrans(b"+/", b"-_"))
    return forms
