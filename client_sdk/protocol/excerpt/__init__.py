"""Verifiable excerpts: chosen messages of a room, provable offline to an outsider (issue 8).

`format` defines the self-contained document (`Excerpt`), parses it
(`parse_excerpt`) and assembles it from parts a client fetched
(`build_excerpt`); `verify` checks it (`verify_excerpt`) without a server
or any member's private key.
"""

from __future__ import annotations

from client_sdk.protocol.excerpt.format import (
    EXCERPT_FORMAT,
    Excerpt,
    ExcerptMessage,
    LogEntry,
    LoggedStatement,
    SignedLog,
    build_excerpt,
    log_entry,
    parse_excerpt,
)
from client_sdk.protocol.excerpt.verify import VerifiedExcerptMessage, verify_excerpt

__all__ = [
    "EXCERPT_FORMAT",
    "Excerpt",
    "ExcerptMessage",
    "LogEntry",
    "LoggedStatement",
    "SignedLog",
    "VerifiedExcerptMessage",
    "build_excerpt",
    "log_entry",
    "parse_excerpt",
    "verify_excerpt",
]
