"""Format version 3 -> 4: a profile's one server URL becomes its list of servers.

tests/vectors/keystore_v3 is a file the version-3 code wrote (one ``server``).
Opened today it holds that URL as its only server, everything else as it was,
and is rewritten as version 4; `Keystore.set_servers` then keeps a list, checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client_sdk.keystore import KEYSTORE_VERSION, Keystore, KeystoreError, KeystoreState
from client_sdk.keystore.migrate import state_from_v3
from client_sdk.protocol.errors import ProtocolError
from tests.unit.keystores import make_state, read_document, vector_profile

VECTORS = Path(__file__).parent.parent / "vectors" / "keystore_v3"
EXPECTED: dict[str, Any] = json.loads((VECTORS / "expected.json").read_text())
PASSPHRASE: str = EXPECTED["passphrase"]
OLD: dict[str, Any] = EXPECTED["state"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A profile holding a copy of the version-3 file."""
    return vector_profile(tmp_path, VECTORS)


def test_the_vector_is_a_version_3_file_with_one_server(home: Path) -> None:
    assert read_document(home)["version"] == 3
    assert isinstance(OLD["server"], str)


def test_the_one_server_becomes_the_only_entry_and_nothing_else_changes(home: Path) -> None:
    state = Keystore.open(home, PASSPHRASE).state

    assert state.servers == (OLD["server"],)
    assert state.server == OLD["server"]
    rest = {name: value for name, value in OLD.items() if name != "server"}
    assert {name: value for name, value in state.to_json().items() if name != "servers"} == rest


def test_opening_rewrites_the_file_as_version_4_with_the_same_kdf(home: Path) -> None:
    before = read_document(home)

    Keystore.open(home, PASSPHRASE)

    after = read_document(home)
    assert (after["version"], KEYSTORE_VERSION) == (4, 4)
    assert after["kdf"] == before["kdf"]
    assert Keystore.open(home, PASSPHRASE).state.servers == (OLD["server"],)


def test_servers_set_on_a_migrated_profile_are_kept_in_order(home: Path) -> None:
    keystore = Keystore.open(home, PASSPHRASE)

    stored = keystore.set_servers(["https://b.example/", "https://a.example", "https://b.example"])

    assert stored == ("https://b.example", "https://a.example")
    assert Keystore.open(home, PASSPHRASE).state.servers == stored


@pytest.mark.parametrize(
    "servers",
    [[], ["ftp://parley.example"], ["parley.example"], ["https://"], ["https://a b.example"]],
    ids=["none", "not http", "no scheme", "no host", "space"],
)
def test_servers_that_are_not_http_urls_are_refused_and_nothing_is_written(
    home: Path, servers: list[str]
) -> None:
    keystore = Keystore.open(home, PASSPHRASE)
    before = (home / "keystore.json").read_bytes()

    with pytest.raises(ProtocolError):
        keystore.set_servers(servers)

    assert (home / "keystore.json").read_bytes() == before


def test_a_state_without_servers_is_malformed() -> None:
    stored = make_state().to_json()

    with pytest.raises(ValueError, match="server URL"):
        KeystoreState.model_validate({**stored, "servers": []})


def test_a_version_3_state_holding_servers_already_is_refused() -> None:
    with pytest.raises(KeystoreError, match="malformed"):
        state_from_v3({**OLD, "servers": ["https://other.example"]})
