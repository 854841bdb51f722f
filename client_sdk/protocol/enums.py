"""The protocol's closed vocabularies as plain enums: roles, sides, modes and
moderation actions (docs/design.md §3, §4).

They live apart from the pydantic models (`models.py`, `statements.py`, which
re-export them) so the command line can name them in its options without
loading pydantic.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """What an account may do on a server."""

    ADMIN = "admin"
    MEDIATOR = "mediator"
    PARTY = "party"
    AUDITOR = "auditor"


class Side(enum.StrEnum):
    """Where a member sits in a room."""

    MEDIATOR = "mediator"
    A = "a"
    B = "b"
    OBSERVER = "observer"


class Mode(enum.StrEnum):
    """Who may post in plenary."""

    OPEN = "open"
    SHUTTLE = "shuttle"


class Action(enum.StrEnum):
    """What a moderation statement does."""

    SET_MODE = "set-mode"
    OPEN_CAUCUS = "open-caucus"
    CLOSE_CAUCUS = "close-caucus"
    MUTE = "mute"
    UNMUTE = "unmute"
    LOCK = "lock"
    UNLOCK = "unlock"
    CLOSE = "close"
    GRANT_AUDITOR = "grant-auditor"
