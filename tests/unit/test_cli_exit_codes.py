"""What `parley` says when something is wrong, and with which exit status, for a user
and for a script (README "Exit codes"): one line, the real reason, never a traceback;
under --json one JSON object on stderr with ``code`` and ``message``; 0 done, 1 refused
or failed verification, 2 usage, configuration or connection, 130 interrupted.

These need no server: each error is found before one would be asked (or the server
cannot be reached). The errors a server or a room gives are in
tests/e2e/test_mediated_session.py."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from client_sdk.cli.main import COMMANDS, plugin_commands
from client_sdk.keystore import KEYSTORE_FILENAME, Keystore, KeystoreError
from tests.support.cli import CliResult, cli_env, run_parley
from tests.support.server import parley_command
from tests.unit.keystores import PASSPHRASE, make_keystore


def parley(args: list[str], home: Path, **env: str) -> CliResult:
    return run_parley(args, env=cli_env(PARLEY_HOME=str(home), **env))


def one_line(result: CliResult, status: int) -> str:
    assert result.returncode == status, result.describe()
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.describe()
    return result.stderr


def test_version_prints_the_installed_version() -> None:
    result = run_parley(["--version"], env=cli_env())

    assert result.returncode == 0
    assert result.stdout == f"parley {version('parley')}\n"


def test_a_usage_error_exits_2_and_under_json_is_a_json_object_on_stderr(tmp_path: Path) -> None:
    plain = parley(["send"], tmp_path)
    as_json = parley(["send", "--json"], tmp_path)
    unknown = parley(["nosuch", "--json"], tmp_path)

    assert plain.returncode == 2
    assert "Missing argument" in plain.stderr
    assert as_json.returncode == 2
    assert as_json.stdout == ""
    assert as_json.json_error() == {"code": "usage", "message": "Missing argument 'room_id'."}
    assert unknown.json_error()["message"] == "No such command 'nosuch'."


def test_no_keystore_says_so_before_asking_a_passphrase(tmp_path: Path) -> None:
    home = tmp_path / "nobody"
    plain = parley(["whoami"], home)
    as_json = parley(["room", "list", "--json"], home)

    message = f"no keystore in {home}; run `parley enroll` first"
    assert one_line(plain, 2) == f"error: {message}\n"
    assert "passphrase" not in plain.stderr.lower()
    assert as_json.json_error() == {"code": "config", "message": message}
    assert as_json.returncode == 2


def test_an_unreadable_keystore_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "damaged"
    home.mkdir()
    (home / KEYSTORE_FILENAME).write_text("{not json")
    wrong = tmp_path / "wrong"
    make_keystore(wrong)

    damaged = parley(["whoami"], home, PARLEY_PASSPHRASE=PASSPHRASE)
    mistyped = parley(["whoami", "--json"], wrong, PARLEY_PASSPHRASE="not the passphrase")

    assert "is damaged" in one_line(damaged, 2)
    assert mistyped.returncode == 2
    assert mistyped.json_error()["code"] == "config"


@pytest.mark.parametrize("server", ["not a url", "http://127.0.0.1:1", "ftp://example.org"])
def test_a_bad_server_url_is_one_line_exit_2(tmp_path: Path, server: str) -> None:
    result = parley(
        ["enroll", "--server", server, "--token", "t", "--json"],
        tmp_path / "new",
        PARLEY_PASSPHRASE=PASSPHRASE,
    )

    assert result.returncode == 2, result.describe()
    assert result.json_error()["code"] in ("connection", "usage", "invalid-input")
    assert not (tmp_path / "new" / KEYSTORE_FILENAME).exists()


def test_a_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pdf"
    sent = parley(["send", "room", "--file", str(missing)], tmp_path)
    as_json = parley(["excerpt", "verify", str(missing), "--json"], tmp_path)

    assert one_line(sent, 2) == f"error: {missing}: no such file\n"
    assert as_json.returncode == 2
    assert as_json.stdout == ""
    assert str(missing) in as_json.json_error()["message"]


def test_enroll_refuses_a_passphrase_under_10_characters(tmp_path: Path) -> None:
    result = parley(
        ["enroll", "--server", "http://127.0.0.1:1", "--token", "t"],
        tmp_path / "new",
        PARLEY_PASSPHRASE="short",
    )

    assert one_line(result, 2) == "error: a passphrase needs at least 10 characters\n"


def test_passphrase_change_re_encrypts_the_keystore(tmp_path: Path) -> None:
    home = tmp_path / "profile"
    make_keystore(home)
    new = "a new and longer passphrase"

    result = parley(
        ["passphrase", "change", "--json"],
        home,
        PARLEY_PASSPHRASE=PASSPHRASE,
        PARLEY_NEW_PASSPHRASE=new,
    )

    assert result.json() == {"keystore": str(home / KEYSTORE_FILENAME), "changed": True}
    assert Keystore.open(home, new).state.account_id == "alice"
    with pytest.raises(KeystoreError):
        Keystore.open(home, PASSPHRASE)
    kdf = json.loads((home / KEYSTORE_FILENAME).read_text())["kdf"]
    assert kdf["n"] >= 2**15  # never weaker than a new keystore's


def test_passphrase_change_refuses_a_short_one_and_keeps_the_old(tmp_path: Path) -> None:
    home = tmp_path / "profile"
    make_keystore(home)

    result = parley(
        ["passphrase", "change"], home, PARLEY_PASSPHRASE=PASSPHRASE, PARLEY_NEW_PASSPHRASE="short"
    )

    assert one_line(result, 2) == "error: a passphrase needs at least 10 characters\n"
    assert Keystore.open(home, PASSPHRASE).state.account_id == "alice"


def test_passphrase_change_with_the_wrong_current_passphrase_changes_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "profile"
    make_keystore(home)

    result = parley(
        ["passphrase", "change"],
        home,
        PARLEY_PASSPHRASE="not the passphrase",
        PARLEY_NEW_PASSPHRASE="a new and longer passphrase",
    )

    one_line(result, 2)
    assert Keystore.open(home, PASSPHRASE).state.account_id == "alice"


def _interruptible() -> None:
    # A test run in the background ignores SIGINT, and its children would inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """`parley ARGS...` on a pseudo-terminal, as a person types at it."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        main, side = pty.openpty()
        self.main = main
        self.process = subprocess.Popen(
            [*parley_command(), *args],
            stdin=side,
            stdout=side,
            stderr=side,
            env=env,
            start_new_session=True,  # no controlling terminal: getpass reads this one
            preexec_fn=_interruptible,
        )
        os.close(side)
        self.seen = ""

    def expect(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in {self.seen!r}"
            ready, _, _ = select.select([self.main], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.main, 4096).decode(errors="replace")
                except OSError:  # the other side closed
                    assert text in self.seen, f"no {text!r} in {self.seen!r}"

    def type(self, line: str) -> None:
        os.write(self.main, f"{line}\n".encode())

    def finish(self, timeout: float = 30.0) -> int:
        status = self.process.wait(timeout)
        try:
            while select.select([self.main], [], [], 0.2)[0]:
                self.seen += os.read(self.main, 4096).decode(errors="replace")
        except OSError:
            pass
        os.close(self.main)
        return status


def test_enroll_at_a_terminal_asks_twice_and_refuses_two_different_passphrases(
    tmp_path: Path,
) -> None:
    env = cli_env(PARLEY_HOME=str(tmp_path / "new"))
    terminal = Terminal(["enroll", "--server", "http://127.0.0.1:1", "--token", "t"], env)

    terminal.expect("New keystore passphrase: ")
    terminal.type("a long passphrase one")
    terminal.expect("Repeat the passphrase: ")
    terminal.type("a long passphrase two")

    assert terminal.finish() == 2
    assert "error: the two passphrases differ; nothing was changed" in terminal.seen
    assert "Traceback" not in terminal.seen


def test_ctrl_c_at_a_prompt_exits_130(tmp_path: Path) -> None:
    home = tmp_path / "profile"
    make_keystore(home)
    terminal = Terminal(["whoami"], cli_env(PARLEY_HOME=str(home)))

    terminal.expect("Keystore passphrase: ")
    os.killpg(terminal.process.pid, signal.SIGINT)

    assert terminal.finish() == 130
    assert "Traceback" not in terminal.seen


def _leaves() -> list[tuple[str, list[str]]]:
    found = []
    for entry in [*COMMANDS, *plugin_commands()]:
        pending = [([entry.name], entry.load())]
        while pending:
            path, command = pending.pop()
            children = getattr(command, "commands", None)
            if children:
                pending += [([*path, name], child) for name, child in children.items()]
            else:
                found.append((" ".join(path), [p.name or "" for p in command.params]))
    return found


LONG_RUNNING = {"serve"}
"""The server itself: it prints logs, not a result."""


@pytest.mark.parametrize(("command", "params"), _leaves(), ids=[c for c, _ in _leaves()])
def test_every_command_has_json(command: str, params: list[str]) -> None:
    if command in LONG_RUNNING:
        pytest.skip("the server prints logs, not a result")
    assert "json_output" in params, f"parley {command} has no --json"


def test_no_passphrase_and_no_terminal_to_ask_is_one_line_naming_the_variable(
    tmp_path: Path,
) -> None:
    """Without PARLEY_PASSPHRASE and with the input not a terminal (a script, cron) the
    passphrase is read from the input; an input with nothing on it is one line, exit 2
    (it was getpass's warning that it could not turn echo off, the prompt, then a line)."""
    make_keystore(tmp_path / "profile")
    opened = parley(["whoami"], tmp_path / "profile", PARLEY_PASSPHRASE="")
    new = parley(["enroll", "--server", "http://127.0.0.1:9", "--token", "t"], tmp_path / "new")
    changed = parley(
        ["passphrase", "change", "--json"],
        tmp_path / "profile",
        PARLEY_PASSPHRASE=PASSPHRASE,
        PARLEY_NEW_PASSPHRASE="",
    )

    assert "set PARLEY_PASSPHRASE" in one_line(opened, 2)
    assert "set PARLEY_PASSPHRASE" in one_line(new, 2)
    assert changed.returncode == 2
    assert changed.json_error()["code"] == "config"
    assert "set PARLEY_NEW_PASSPHRASE" in changed.json_error()["message"]


def test_a_passphrase_piped_on_the_input_opens_the_keystore(tmp_path: Path) -> None:
    make_keystore(tmp_path)
    result = run_parley(
        ["whoami", "--json"],
        env=cli_env(PARLEY_HOME=str(tmp_path), PARLEY_PASSPHRASE=""),
        stdin=PASSPHRASE + "\n",
    )

    assert result.returncode == 0, result.describe()
    assert result.stderr == ""
    assert json.loads(result.stdout)["account_id"] == "alice"
