"""Table definitions (SQLAlchemy Core). Alembic migrations are the only way the
schema changes; these definitions mirror the head revision and are what the
repositories query with."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # pending | active | revoked | cancelled
    Column("account_key", LargeBinary, nullable=True, unique=True),
    Column("registration", Text, nullable=True),  # signed statement JSON
    Column("created_by", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("signing_key", LargeBinary, nullable=False, unique=True),
    Column("cert", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

encryption_keys = Table(
    "encryption_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False, index=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("cert", Text, nullable=False),
    Column("not_after", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

device_links = Table(
    "device_links",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("device_id", String(64), nullable=False),
    Column("signing_key", LargeBinary, nullable=False),
    Column("encryption_key", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("approved_by", String(64), nullable=True),
    Column("approved_at", BigInteger, nullable=True),
    Column("grant", Text, nullable=True),  # LinkGrantOut JSON once approved
)
"""A new device's request to join an account; approved by a device it already has."""

login_challenges = Table(
    "login_challenges",
    metadata,
    Column("nonce_hash", LargeBinary, primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("used_at", BigInteger, nullable=True),
)
"""Outstanding challenges: a used one is deleted, an expired one purged."""

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False, index=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("revoked_at", BigInteger, nullable=True),
)
"""Bearer tokens until they expire (then purged), revoked ones included."""

rooms = Table(
    "rooms",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("created_by", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # open | locked | closed
    Column("mode", String(16), nullable=False),  # open | shuttle
    Column("caucuses", String(64), nullable=False, server_default=""),  # "caucus-a,caucus-b"
    Column("require_verified", Boolean, nullable=False),
    Column("roster_version", Integer, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)

room_members = Table(
    "room_members",
    metadata,
    Column("room_id", String(64), ForeignKey("rooms.id"), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("side", String(16), nullable=False),
    Index("ix_room_members_account", "account_id"),
)

room_mutes = Table(
    "room_mutes",
    metadata,
    Column("room_id", String(64), ForeignKey("rooms.id"), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
)
"""Members a mediator muted: the server refuses their sends."""

rosters = Table(
    "rosters",
    metadata,
    Column("room_id", String(64), ForeignKey("rooms.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("statement", Text, nullable=False),
    Column("body_hash", LargeBinary, nullable=False),
    Column("seq", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("room_id", String(64), ForeignKey("rooms.id"), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("channel", String(64), nullable=True),
    Column("message_id", String(64), nullable=True),
    Column("sender_device", String(64), nullable=False),
    Column("payload", Text, nullable=True),  # NULL once purged by retention
    Column("payload_hash", LargeBinary, nullable=False),
    Column("leaf_index", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("room_id", "message_id", name="uq_events_room_message"),
)

logs = Table(
    "logs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("origin", String(300), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

log_entries = Table(
    "log_entries",
    metadata,
    Column("log_id", String(64), ForeignKey("logs.id"), primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("leaf", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    Index("ix_log_entries_hash", "log_id", "leaf_hash"),
)

log_nodes = Table(
    "log_nodes",
    metadata,
    Column("log_id", String(64), ForeignKey("logs.id"), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hash", LargeBinary, nullable=False),
)
"""Every perfect-subtree hash of every log (level 0 = leaf hashes), for proofs and tiles."""

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("log_id", String(64), ForeignKey("logs.id"), primary_key=True),
    Column("size", BigInteger, primary_key=True),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""Signed checkpoints; the primary key makes two roots for one size impossible."""

cosignatures = Table(
    "cosignatures",
    metadata,
    Column("log_id", String(64), ForeignKey("logs.id"), primary_key=True),
    Column("size", BigInteger, primary_key=True),
    Column("witness", String(300), primary_key=True),
    Column("line", Text, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

witnesses = Table(
    "witnesses",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("vkey", Text, nullable=False, unique=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""Witness (cosigning) keys registered by auditors."""

room_auditors = Table(
    "room_auditors",
    metadata,
    Column("room_id", String(64), ForeignKey("rooms.id"), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("granted_by", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""Auditors granted a room's log (never its content)."""

room_witnesses = Table(
    "room_witnesses",
    metadata,
    Column("room_id", String(64), ForeignKey("rooms.id"), primary_key=True),
    Column("vkey", String(500), primary_key=True),
)
"""The witness keys the current roster's signed policy names: their auditors read the
room's checkpoints and consistency proofs, and cosign them, without a grant."""

directory_entries = Table(
    "directory_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("statement", Text, nullable=False),
)
"""The signed statement behind each directory log leaf."""

instrument_states = Table(
    "instrument_states",
    metadata,
    Column("room_id", String(64), ForeignKey("rooms.id"), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("state", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
)
"""The state of each round, agreement and receipt of a room, as its logged instrument
acts built it (docs/design.md §7); `seq` is the event that last changed it."""

log_keys = Table(
    "log_keys",
    metadata,
    Column("id", Integer, primary_key=True),  # 1: one key signs every log
    Column("public_key", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""The public log key recorded at the first start, which every later start must hold
(`server.log.keyguard`)."""

APPEND_ONLY_TABLES = (
    "log_keys",
    "log_entries",
    "log_nodes",
    "checkpoints",
    "cosignatures",
    "directory_entries",
    "rosters",
)
"""Tables whose rows the database refuses to UPDATE or DELETE (triggers)."""

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("room_id", String(64), ForeignKey("rooms.id"), nullable=False),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),  # plaintext bytes
    Column("chunk_size", BigInteger, nullable=False),  # plaintext bytes per chunk
    Column("ciphertext_size", BigInteger, nullable=False),
    Column("received_chunks", BigInteger, nullable=False),
    Column("received_bytes", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

blobs = Table(
    "blobs",
    metadata,
    Column("room_id", String(64), ForeignKey("rooms.id"), primary_key=True),
    Column("blob", String(64), primary_key=True),  # base64url SHA-256 of the ciphertext
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
