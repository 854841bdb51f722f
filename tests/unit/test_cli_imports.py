"""The `parley` command imports only what the command asked for (issue 11).

Each case runs the real command in a fresh interpreter under ``-X importtime``
and reads the modules it loaded from stderr, so a module that starts importing
the SDK, the server or rich at its top fails here instead of silently making
every command slower.
"""

from __future__ import annotations

import inspect
import subprocess
from pathlib import Path

import pytest

from client_sdk.cli.lazy import LazyCommand
from client_sdk.cli.main import COMMANDS, plugin_commands
from tests.support.cli import cli_env
from tests.support.server import parley_command

SERVER_STACK = ("fastapi", "starlette", "sqlalchemy", "uvicorn", "alembic", "asyncpg", "aiosqlite")
"""What no client command, nor any help, may load."""

CLIENT_STACK = ("client_sdk.client", "client_sdk.keystore", "client_sdk.audit", "httpx")
"""What help (of any command but the server's) does not need."""

CLIENT_COMMANDS = [entry.name for entry in COMMANDS]

OPTIONAL_PARTS = (
    "client_sdk.client.dossiers",
    "client_sdk.client.excerpts",
    "client_sdk.client.documents",
    "client_sdk.client.agreements",
    "client_sdk.client.offers",
    "client_sdk.protocol.sdjwt",
    "client_sdk.protocol.excerpt",
)
"""The client's parts `parley send` and `parley read` do not use (built on first use)."""


def imported(args: list[str], *, env: dict[str, str] | None = None) -> set[str]:
    """The modules `parley ARGS...` imports, read from ``-X importtime``."""
    command = parley_command()
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:], *args],
        env=env or cli_env(),
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and not line.rstrip().endswith("package")
    }
    assert "client_sdk.cli.main" in names, done.stderr[-2000:]
    return names


def loaded(names: set[str], stacks: tuple[str, ...]) -> list[str]:
    """The members of `names` that are, or are inside, one of `stacks`."""
    return sorted(n for n in names if any(n == s or n.startswith(f"{s}.") for s in stacks))


def test_parley_help_loads_neither_the_server_nor_the_sdk_client() -> None:
    names = imported(["--help"])
    assert loaded(names, SERVER_STACK) == []
    assert loaded(names, CLIENT_STACK) == []
    assert loaded(names, ("rich", "pydantic", "cryptography")) == []


@pytest.mark.parametrize("name", CLIENT_COMMANDS)
def test_a_client_commands_help_loads_neither_the_server_nor_the_sdk_client(name: str) -> None:
    names = imported([name, "--help"])
    assert loaded(names, SERVER_STACK) == []
    assert loaded(names, CLIENT_STACK) == []
    assert loaded(names, ("rich", "cryptography", "server")) == []


@pytest.mark.parametrize("name", ["serve", "admin"])
def test_the_servers_help_does_not_load_the_server_stack(name: str) -> None:
    assert loaded(imported([name, "--help"]), SERVER_STACK) == []


def test_a_client_command_that_runs_does_not_load_the_server(tmp_path: Path) -> None:
    env = cli_env(PARLEY_HOME=str(tmp_path), PARLEY_PASSPHRASE="unused")
    names = imported(["send", "r_nowhere", "hello"], env=env)
    assert "client_sdk.client" in names  # it got as far as opening the profile
    assert loaded(names, (*SERVER_STACK, "server")) == []
    assert loaded(names, ("websockets",)) == []  # only a stream (read --follow) needs it


def test_the_client_a_command_opens_does_not_load_its_optional_parts() -> None:
    # What `parley send` and `parley read` import to open the profile's client;
    # the parts they do not use are built, and imported, on first use.
    done = subprocess.run(
        [
            parley_command()[0],
            "-c",
            "import sys; from client_sdk.client import ParleyClient; print(*sys.modules)",
        ],
        env=cli_env(),
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=True,
    )
    names = set(done.stdout.split())
    assert "client_sdk.client.facade" in names
    assert loaded(names, OPTIONAL_PARTS) == []


def first_line(text: str | None) -> str:
    """A help text's first paragraph on one line, as a listing shows it."""
    return " ".join(inspect.cleandoc(text or "").split("\n\n")[0].split())


@pytest.mark.parametrize("entry", [*COMMANDS, *plugin_commands()], ids=lambda e: e.name)
def test_the_listed_help_line_is_the_commands_own(entry: LazyCommand) -> None:
    assert entry.help == first_line(entry.load().help)


def test_every_plugin_command_is_listed_once() -> None:
    names = [entry.name for entry in [*COMMANDS, *plugin_commands()]]
    assert len(names) == len(set(names))
    assert {"serve", "admin"} <= set(names)


def test_version_loads_no_sdk() -> None:
    names = imported(["--version"])
    assert loaded(names, SERVER_STACK) == []
    assert loaded(names, CLIENT_STACK) == []
    assert loaded(names, ("rich", "pydantic", "cryptography")) == []
