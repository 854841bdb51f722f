"""``parley passphrase change``, and the new passphrase `enroll` and `device add` ask for.

A new passphrase comes from an environment variable (for automation) or, at a
terminal, is typed twice; either way it has at least `MIN_LENGTH` characters.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Final

import typer

from client_sdk.cli.common import USAGE, fail, failed, out, print_json
from client_sdk.cli.render import inline
from client_sdk.protocol.errors import KeystoreError

MIN_LENGTH: Final = 10
"""The shortest passphrase a new or changed keystore accepts."""
NEW_PASSPHRASE_VARIABLE: Final = "PARLEY_NEW_PASSPHRASE"  # noqa: S105 (a variable's name)
"""`parley passphrase change` reads the new passphrase here when set (the current one
stays in ``PARLEY_PASSPHRASE``)."""

passphrase_app = typer.Typer(help="This profile's keystore passphrase.", no_args_is_help=True)


def new_passphrase(variable: str = "PARLEY_PASSPHRASE") -> str:
    """The passphrase for a new keystore: `variable` if set, else asked twice at a
    terminal (once when the input is not one); refused (exit 2) if the two differ or
    it is shorter than `MIN_LENGTH`."""
    from client_sdk.keystore.profile import read_secret

    chosen = os.environ.get(variable, "")
    if not chosen:
        chosen = read_secret("New keystore passphrase: ", variable)
        if sys.stdin.isatty() and read_secret("Repeat the passphrase: ", variable) != chosen:
            raise fail("the two passphrases differ; nothing was changed", USAGE)
    if len(chosen) < MIN_LENGTH:
        raise fail(f"a passphrase needs at least {MIN_LENGTH} characters", USAGE)
    return chosen


@passphrase_app.command("change")
def change(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-encrypt this profile's keystore under a new passphrase.

    The current passphrase comes from PARLEY_PASSPHRASE or a prompt, the new one
    from PARLEY_NEW_PASSPHRASE or two prompts. Other commands running on this
    profile must be started again.
    """
    from client_sdk.keystore import Keystore, default_home, passphrase_from_env_or_prompt
    from client_sdk.protocol.errors import ParleyError

    home = default_home()
    try:
        if not Keystore.exists(home):  # said before any passphrase is asked
            raise KeystoreError(f"no keystore in {home}; run `parley enroll` first")
        keystore = Keystore.open(home, passphrase_from_env_or_prompt())
        chosen = new_passphrase(NEW_PASSPHRASE_VARIABLE)
        keystore.change_passphrase(chosen)
    except ParleyError as exc:
        raise failed(exc) from exc
    if json_output:
        print_json({"keystore": str(keystore.path), "changed": True})
    else:
        out.line(f"The keystore at {inline(keystore.path)} now opens with the new passphrase.")
