"""Running the server safely, with real `parley serve` processes: one server per SQLite
data directory, a log key that cannot be lost silently, and start-up errors that are
one line with exit code 2."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import sqlite3
from pathlib import Path

import pytest

from client_sdk.protocol.leaf import directory_origin
from client_sdk.protocol.note import format_verifier_key, parse_signer_key
from server.config import Settings
from server.log.signer import KEY_FILE
from tests.support.cli import CliResult, cli_env, run_parley
from tests.support.databases import (
    create_database,
    drop_database,
    postgres_admin_url,
    with_database,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


def _one_line_error(result: CliResult, code: int, *phrases: str) -> str:
    """The refusal's single stderr line, checked: its exit code, no traceback, phrases."""
    assert result.returncode == code, result.describe()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.describe()
    assert lines[0].startswith("error: "), result.describe()
    for phrase in phrases:
        assert phrase in lines[0], result.describe()
    return lines[0]


def _serve(data_dir: Path, *args: str, **env: str) -> CliResult:
    return run_parley(
        ["serve", "--port", "9", *args], env=cli_env(PARLEY_DATA_DIR=str(data_dir), **env)
    )


@pytest.mark.parametrize(
    ("url", "phrases"),
    [
        pytest.param("not a url", ["bad database URL not a url", "postgresql://"], id="bad-url"),
        pytest.param(
            "postgresql://parley@127.0.0.1:1/parley",
            ["cannot reach the database postgresql+asyncpg://parley@127.0.0.1:1/parley"],
            id="unreachable",
        ),
        pytest.param(
            "postgresql://parley:s3cret@127.0.0.1:1/parley", ["***"], id="password-hidden"
        ),
        pytest.param(
            "mysql://parley@127.0.0.1/parley", ["needs the Python module MySQLdb"], id="no-driver"
        ),
    ],
)
def test_a_database_the_server_cannot_use_is_one_line_and_exit_2(
    tmp_path: Path, url: str, phrases: list[str]
) -> None:
    assert importlib.util.find_spec("MySQLdb") is None
    line = _one_line_error(_serve(tmp_path, PARLEY_DATABASE_URL=url), 2, *phrases)
    assert "s3cret" not in line


def test_an_unmigrated_database_with_no_migrate_is_refused_with_what_to_run(
    tmp_path: Path,
) -> None:
    _one_line_error(
        _serve(tmp_path, "--no-migrate"), 2, "schema revision none", "alembic upgrade head"
    )


def test_a_bad_setting_is_one_line_naming_its_variable(tmp_path: Path) -> None:
    _one_line_error(
        _serve(tmp_path, PARLEY_TOKEN_TTL_SECONDS="soon"), 2, "PARLEY_TOKEN_TTL_SECONDS"
    )


def test_serve_help_shows_every_settings_default() -> None:
    shown = " ".join(run_parley(["serve", "--help"], env=cli_env()).ok().stdout.split())
    for name in Settings.model_fields:
        entry = shown.split(f"PARLEY_{name.upper()}:", 1)[1].split("PARLEY_", 1)[0]
        assert "[default: " in entry, name
    assert f"[default: {Path.home() / '.local' / 'share' / 'parley'}]" in shown


@pytest.mark.postgres
def test_a_missing_postgres_database_is_named_and_a_plain_postgresql_url_works(
    tmp_path: Path,
) -> None:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL half skipped: set PARLEY_TEST_POSTGRES_URL to run it")
    missing = with_database(admin, "parley_no_such_database")
    _one_line_error(_serve(tmp_path, PARLEY_DATABASE_URL=missing), 2, "does not exist")

    name = asyncio.run(create_database(admin))
    try:
        env = cli_env(PARLEY_DATA_DIR=str(tmp_path), PARLEY_DATABASE_URL=with_database(admin, name))
        enrolled = run_parley(
            ["admin", "enroll", "--role", "party", "--name", "P", "--json"], env=env
        )
        assert enrolled.json()["account_id"]
    finally:
        asyncio.run(drop_database(admin, name))


# --- one server per SQLite data directory -------------------------------------------


def test_a_second_server_on_the_same_data_directory_refuses_at_once_naming_the_first(
    server: ServerProcess, tmp_path: Path
) -> None:
    assert server.process is not None
    _one_line_error(
        _serve(tmp_path / "data"),
        2,
        f"another parley serve (pid {server.process.pid} on ",
        "one server per SQLite data directory",
    )


def test_a_killed_servers_lock_does_not_stop_the_next_start(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.kill()  # SIGKILL: no clean-up, the lock file still names it
    assert '"pid"' in (tmp_path / "data" / "serve.lock").read_text()
    server.start()
    assert server.process is not None
    assert f'"pid": {server.process.pid}' in (tmp_path / "data" / "serve.lock").read_text()
    server.stop()  # SIGTERM: a clean stop empties the file
    assert (tmp_path / "data" / "serve.lock").read_text() == ""


def test_admin_commands_run_beside_a_running_server(server: ServerProcess) -> None:
    run_parley(["admin", "enroll", "--role", "party", "--name", "Al"], env=server.env).ok()


# --- the log key cannot be lost silently ---------------------------------------------


def _vkey(data_dir: Path) -> str:
    key = parse_signer_key((data_dir / KEY_FILE).read_text().strip())
    public = key.private_key.public_key().public_bytes_raw()
    return format_verifier_key(directory_origin("parley.local"), public)


def test_a_missing_log_key_is_refused_naming_the_key_clients_pinned_and_none_is_made(
    server: ServerProcess, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    expected = _vkey(data)
    server.stop()
    (data / KEY_FILE).rename(tmp_path / "saved-key")

    for args in (["serve", "--port", "9"], ["admin", "enroll", "--role", "party", "--name", "B"]):
        result = run_parley(args, env=server.env)
        _one_line_error(result, 2, f"{data / KEY_FILE} is missing", expected, "restore")
        assert not (data / KEY_FILE).exists()

    (tmp_path / "saved-key").rename(data / KEY_FILE)
    server.start()


def test_another_log_key_is_refused_naming_both_keys(server: ServerProcess, tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = _vkey(data)
    server.stop()
    other = tmp_path / "other-key"
    run_parley(["admin", "log-key", "generate", "--out", str(other)], env=server.env).ok()
    result = _serve(data, PARLEY_LOG_SIGNING_KEY=other.read_text().strip())
    _one_line_error(result, 2, f"signed by log key {expected}", "PARLEY_LOG_SIGNING_KEY")


def test_a_database_from_before_the_recorded_key_is_checked_against_its_checkpoints(
    server: ServerProcess, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server.stop()
    with sqlite3.connect(data / "parley.db") as db:  # as a database made before 0009 was
        db.execute("DROP TRIGGER log_keys_no_delete")
        db.execute("DELETE FROM log_keys")
        signature = base64.b64encode(bytes.fromhex("abcdef12") + bytes(64)).decode()
        note = f"parley.local/directory\n1\nAA==\n\n\u2014 parley.local/directory {signature}\n"
        db.execute(
            "INSERT INTO checkpoints (log_id, size, root, note, created_at) "
            "VALUES ('directory', 1, x'00', ?, 1)",
            (note,),
        )
    _one_line_error(_serve(data), 2, "key hash abcdef12", "restore")


def test_log_key_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    env = cli_env(PARLEY_DATA_DIR=str(tmp_path))
    made = run_parley(["admin", "log-key", "generate", "--json"], env=env).json()
    assert made["path"] == str(tmp_path / KEY_FILE)
    assert made["vkey"] == _vkey(tmp_path)
    assert os.stat(tmp_path / KEY_FILE).st_mode & 0o777 == 0o600
    before = (tmp_path / KEY_FILE).read_bytes()

    again = run_parley(["admin", "log-key", "generate"], env=env)
    _one_line_error(again, 1, "exists", "never overwritten")
    assert (tmp_path / KEY_FILE).read_bytes() == before
