"""Where the profile lives and how its passphrase is asked for."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from client_sdk.protocol.errors import KeystoreError

__all__ = ["default_home", "passphrase_from_env_or_prompt", "read_secret"]


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """The profile directory: ``$PARLEY_HOME``, else ``~/.config/parley``."""
    env = os.environ if environ is None else environ
    configured = env.get("PARLEY_HOME", "")
    return Path(configured).expanduser() if configured else Path.home() / ".config" / "parley"


def passphrase_from_env_or_prompt(prompt: str = "Keystore passphrase: ") -> str:
    """``$PARLEY_PASSPHRASE`` if set, else a passphrase read from the terminal without echo."""
    from_env = os.environ.get("PARLEY_PASSPHRASE")
    if from_env:
        return from_env
    return read_secret(prompt)


def read_secret(prompt: str, variable: str = "PARLEY_PASSPHRASE") -> str:
    """A secret typed at the terminal without echo; where the input is not a terminal
    (a pipe, a file, nothing), its next line, without a prompt or getpass's warning
    that it cannot turn echo off; `KeystoreError`, naming the environment `variable`
    that gives it instead, when that input has ended."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    if not line:
        raise KeystoreError(
            f"no passphrase: the input is not a terminal and has no line to read "
            f"({prompt.strip().rstrip(':')}); set {variable}"
        )
    return line.removesuffix("\n").removesuffix("\r")
