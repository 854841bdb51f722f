"""Migration 0008 fills `room_witnesses` from each room's current signed policy."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from server.storage.migrate import alembic_config


def _roster(room_id: str, version: int, witnesses: list[str]) -> str:
    body = {"room_id": room_id, "version": version, "policy": {"witnesses": witnesses}}
    return json.dumps({"body": body, "signature": "AA"})


def test_existing_rooms_get_the_witnesses_of_their_current_roster(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0007")
        conn.execute(
            text(
                "INSERT INTO accounts (id, role, name, status, created_at) "
                "VALUES ('mona', 'mediator', 'Mona', 'active', 0)"
            )
        )
        for room_id, version in (("room1", 2), ("room2", 1)):
            conn.execute(
                text(
                    "INSERT INTO rooms (id, title, created_by, created_at, status, mode, "
                    "require_verified, roster_version, last_seq) "
                    "VALUES (:id, 'Talks', 'mona', 0, 'open', 'open', false, :v, :v)"
                ),
                {"id": room_id, "v": version},
            )
        rosters = [
            ("room1", 1, _roster("room1", 1, ["w.old+1+A"])),
            ("room1", 2, _roster("room1", 2, ["w.a+1+A", "w.b+2+B"])),
            ("room2", 1, _roster("room2", 1, [])),
        ]
        for room_id, version, statement in rosters:
            conn.execute(
                text(
                    "INSERT INTO rosters (room_id, version, statement, body_hash, seq) "
                    "VALUES (:r, :v, :s, x'00', :v)"
                ),
                {"r": room_id, "v": version, "s": statement},
            )
        command.upgrade(config, "head")
        found = conn.execute(text("SELECT room_id, vkey FROM room_witnesses ORDER BY vkey"))
        assert [tuple(row) for row in found] == [("room1", "w.a+1+A"), ("room1", "w.b+2+B")]
    engine.dispose()
