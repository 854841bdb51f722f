"""`parley admin backup` on PostgreSQL runs pg_dump without the database password on
its command line, where any local user's `ps` would show it."""

from __future__ import annotations

from pathlib import Path

from server.backup import pg_dump_command


def test_the_password_goes_in_the_environment_not_the_arguments(tmp_path: Path) -> None:
    argv, env = pg_dump_command(
        "/usr/bin/pg_dump", "postgresql://parley:s3cr%40t-pw@db.example:5433/parley", tmp_path
    )
    assert not any("s3cr" in arg for arg in argv), argv
    assert env["PGPASSWORD"] == "s3cr@t-pw"
    assert argv[-1] == "postgresql://parley@db.example:5433/parley"


def test_a_url_without_a_password_is_passed_as_it_is(tmp_path: Path) -> None:
    argv, _ = pg_dump_command("/usr/bin/pg_dump", "postgresql://postgres@127.0.0.1/x", tmp_path)
    assert argv[-1] == "postgresql://postgres@127.0.0.1/x"
    assert argv[:5] == [
        "/usr/bin/pg_dump",
        "--format=custom",
        "--no-owner",
        "--file",
        str(tmp_path),
    ]
