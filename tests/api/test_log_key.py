"""The server's generated log key survives a kill while it is being written
(docs/design.md §6, §8): a real process dies (SIGKILL) at a point of the write,
and the next start still gets a whole key."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from client_sdk.protocol.note import parse_signer_key
from server.log.signer import KEY_FILE, CheckpointSigner

_DIE_AT = """
import os, signal, sys
from pathlib import Path
import server.log.signer as signer

def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[2] == "fsync":  # the key's bytes are written, not yet durable
    signer.os.fsync = die
else:  # before the key's bytes are written
    signer.format_signer_key = die
signer.CheckpointSigner.load(signer_key=None, data_dir=Path(sys.argv[1]))
"""


@pytest.mark.parametrize("moment", ["format_signer_key", "fsync"])
def test_a_server_killed_while_writing_its_first_log_key_starts_again(
    tmp_path: Path, moment: str
) -> None:
    died = subprocess.run(
        [sys.executable, "-c", _DIE_AT, str(tmp_path), moment], check=False, timeout=60
    )
    assert died.returncode == -signal.SIGKILL

    signer = CheckpointSigner.load(signer_key=None, data_dir=tmp_path)

    stored = parse_signer_key((tmp_path / KEY_FILE).read_text().strip())
    assert stored.private_key.public_key().public_bytes_raw() == signer.public_key
    assert CheckpointSigner.load(signer_key=None, data_dir=tmp_path).public_key == signer.public_key
