"""Where the profile lives and how its passphrase is asked for."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["default_home", "passphrase_from_env_or_prompt"]


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
    return getpass.getpass(prompt)
