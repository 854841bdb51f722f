"""`parley audit witness serve`: the c2sp.org/tlog-witness add-checkpoint endpoint, case by case.

Each request is built as the specification lays it out (an ``old N`` line, one
standard-base64 hash a line, a blank line, the signed checkpoint), never by the
SDK's own serializer, and each test is named after the case of the
specification it exercises (github.com/C2SP/C2SP tlog-witness.md, 95978ca8).
The cases run in-process against the ASGI application; one test runs the
real command and talks to it over a socket.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.audit.witness import Witness
from client_sdk.audit.witness_http import MAX_REQUEST_BYTES, witness_app
from client_sdk.protocol.errors import SIZE_CONTENT_TYPE
from client_sdk.protocol.merkle import EMPTY_ROOT, consistency_proof_from_leaves
from client_sdk.protocol.note import (
    Checkpoint,
    open_note,
    parse_verifier_key,
    sign_note,
    verify_cosignature,
)
from tests.audit.tlog import ORIGIN, Log
from tests.unit.keystores import PASSPHRASE, make_keystore, make_state

NOW = 1_767_000_000


def body(old: int, proof: list[bytes], checkpoint: str) -> bytes:
    """An add-checkpoint request body, laid out as the specification shows it."""
    lines = [f"old {old}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return ("".join(line + "\n" for line in lines) + "\n" + checkpoint).encode()


def proof(log: Log, old: int, size: int | None = None) -> list[bytes]:
    """The RFC 6962 consistency proof from `old` to `size` (the whole log by default)."""
    return consistency_proof_from_leaves(old, len(log.hashes) if size is None else size, log.hashes)


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    """A witness with its state in a temporary profile, at a fixed time."""
    return Witness(
        "witness.example/w1",
        Ed25519PrivateKey.generate(),
        tmp_path / "witness.json",
        clock=lambda: NOW,
    )


@pytest.fixture
def log(witness: Witness) -> Log:
    """A log of five leaves that the witness is configured with."""
    followed = Log()
    followed.grow(5)
    witness.follow(followed.origin, followed.vkey)
    return followed


@pytest.fixture
async def http(witness: Witness) -> AsyncIterator[httpx.AsyncClient]:
    """The witness's HTTP endpoint, in-process."""
    transport = httpx.ASGITransport(app=witness_app(witness))
    async with httpx.AsyncClient(transport=transport, base_url="http://witness.test") as client:
        yield client


async def post(http: httpx.AsyncClient, data: bytes) -> httpx.Response:
    """POST <submission prefix>/add-checkpoint."""
    return await http.post("/add-checkpoint", content=data)


def cosigned(witness: Witness) -> int:
    """The size the witness cosigned last."""
    followed = witness.latest(ORIGIN)
    assert followed is not None
    return followed.size


def assert_cosigned(answer: httpx.Response, witness: Witness, note: str) -> None:
    """A 200 whose body is one cosignature line by the witness over the note's checkpoint."""
    assert answer.status_code == 200, answer.text
    assert answer.text.startswith("\u2014 witness.example/w1 ")
    assert answer.text.endswith("\n")
    assert answer.text.count("\n") == 1
    text = note.partition("\n\n")[0] + "\n"
    assert verify_cosignature(text, answer.text, parse_verifier_key(witness.vkey)) == NOW


# --- 200 ----------------------------------------------------------------------------


async def test_a_first_checkpoint_with_old_size_zero_gets_200_and_a_cosignature_line(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    answer = await post(http, body(0, [], log.note()))
    assert_cosigned(answer, witness, log.note())
    assert cosigned(witness) == 5


async def test_a_checkpoint_extending_the_cosigned_one_with_a_valid_proof_gets_200(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    await post(http, body(0, [], log.note()))
    log.grow(7)
    answer = await post(http, body(5, proof(log, 5), log.note()))
    assert_cosigned(answer, witness, log.note())
    assert cosigned(witness) == 12


async def test_signatures_by_unknown_keys_on_the_checkpoint_are_ignored(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    # The specification's example carries two signatures; only the trusted one counts.
    stranger = sign_note(log.note().partition("\n\n")[0] + "\n", "other.example", log.key)
    note = log.note() + stranger.partition("\n\n")[2]
    assert_cosigned(await post(http, body(0, [], note)), witness, note)


async def test_the_answer_appended_to_the_checkpoint_opens_as_a_note_signed_by_the_witness(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    # "The client MAY concatenate it to the checkpoint, and use a note verification function."
    answer = await post(http, body(0, [], log.note()))
    _, names = open_note(log.note() + answer.text, [parse_verifier_key(witness.vkey)])
    assert names == ["witness.example/w1"]


async def test_the_same_checkpoint_again_gets_200(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    await post(http, body(0, [], log.note()))
    assert_cosigned(await post(http, body(5, [], log.note())), witness, log.note())


async def test_a_size_zero_checkpoint_with_the_empty_tree_root_gets_200(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    empty = sign_note(Checkpoint(ORIGIN, 0, EMPTY_ROOT).to_text(), ORIGIN, log.key)
    assert_cosigned(await post(http, body(0, [], empty)), witness, empty)


# --- 404, 403 -----------------------------------------------------------------------


async def test_an_unknown_origin_gets_404(http: httpx.AsyncClient) -> None:
    other = Log("example.com/behind-the-sofa")
    other.grow(2)
    assert (await post(http, body(0, [], other.note()))).status_code == 404


async def test_a_checkpoint_without_a_signature_by_the_trusted_key_gets_403(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    impostor = Log(key=Ed25519PrivateKey.generate())
    impostor.hashes = list(log.hashes)
    assert (await post(http, body(0, [], impostor.note()))).status_code == 403
    assert cosigned(witness) == 0


async def test_a_bad_signature_under_the_trusted_key_name_and_id_gets_403(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    note = log.note()
    text, _, line = note.partition("\n\n")
    name, encoded = line.removeprefix("\u2014 ").rstrip("\n").split(" ")
    value = bytearray(base64.b64decode(encoded))
    value[-1] ^= 1  # the key ID (first four bytes) still names the trusted key
    forged = f"{text}\n\n\u2014 {name} {base64.b64encode(bytes(value)).decode()}\n"
    assert (await post(http, body(0, [], forged))).status_code == 403
    assert cosigned(witness) == 0


# --- 400, 409 -----------------------------------------------------------------------


async def test_an_old_size_above_the_checkpoint_size_gets_400(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    await post(http, body(0, [], log.note()))
    assert (await post(http, body(5, [], log.note(3)))).status_code == 400
    assert cosigned(witness) == 5


async def test_an_old_size_that_is_not_the_cosigned_size_gets_409_with_that_size(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    await post(http, body(0, [], log.note()))
    log.grow(3)
    answer = await post(http, body(2, proof(log, 2), log.note()))
    assert answer.status_code == 409
    assert answer.headers["content-type"] == SIZE_CONTENT_TYPE
    assert answer.content == b"5\n"


async def test_a_client_without_state_learns_the_cosigned_size_from_old_size_zero(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    # "A client ... MAY initially make a request with a old size of zero to obtain it."
    await post(http, body(0, [], log.note()))
    log.grow(2)
    learned = await post(http, body(0, [], log.note()))
    assert (learned.status_code, learned.text) == (409, "5\n")
    old = int(learned.text)
    assert_cosigned(await post(http, body(old, proof(log, old), log.note())), witness, log.note())


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"old 0\n", id="no blank line and no checkpoint"),
        pytest.param(b"old -1\n\nx\n", id="negative old size"),
        pytest.param(b"old 01\n\nx\n", id="leading zero"),
        pytest.param(b"old  0\n\nx\n", id="two spaces"),
        pytest.param(b"OLD 0\n\nx\n", id="upper case"),
        pytest.param(b"old 0\nnot-base64!\n\nx\n", id="proof line not base64"),
        pytest.param(b"old 0\nAAAA\n\nx\n", id="proof line not a 32-byte hash"),
        pytest.param(b"old 0\n\nnot a checkpoint\n", id="not a checkpoint"),
        pytest.param(b"old 0\n" + b"A" * 43 + b"=\n" * 64 + b"\nx\n", id="64 proof lines"),
        pytest.param(b"\xff\xfe", id="not UTF-8"),
    ],
)
async def test_a_malformed_request_gets_400(http: httpx.AsyncClient, log: Log, data: bytes) -> None:
    answer = await post(http, data)
    assert answer.status_code == 400
    assert answer.text.endswith("\n")
    assert answer.text.count("\n") == 1


# --- 422 ----------------------------------------------------------------------------


async def test_a_size_zero_checkpoint_whose_root_is_not_the_empty_tree_hash_gets_422(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    lying = sign_note(Checkpoint(ORIGIN, 0, bytes(32)).to_text(), ORIGIN, log.key)
    assert (await post(http, body(0, [], lying))).status_code == 422
    assert witness.latest(ORIGIN) is not None
    assert cosigned(witness) == 0


async def test_a_non_empty_proof_from_old_size_zero_gets_422(
    http: httpx.AsyncClient, log: Log
) -> None:
    assert (await post(http, body(0, [bytes(32)], log.note()))).status_code == 422


async def test_a_consistency_proof_that_does_not_verify_gets_422(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    await post(http, body(0, [], log.note()))
    log.grow(3)
    bad = [bytes(32), *proof(log, 5)[1:]]
    assert (await post(http, body(5, bad, log.note()))).status_code == 422
    assert cosigned(witness) == 5


async def test_a_forked_log_gets_422(http: httpx.AsyncClient, witness: Witness, log: Log) -> None:
    await post(http, body(0, [], log.note()))
    fork = Log(key=log.key)
    fork.hashes = log.hashes[:4]
    fork.grow(4, tag="fork")
    assert (await post(http, body(5, proof(fork, 5), fork.note()))).status_code == 422
    assert cosigned(witness) == 5


async def test_a_checkpoint_of_the_cosigned_size_with_a_different_root_gets_422_not_409(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    await post(http, body(0, [], log.note()))
    fork = Log(key=log.key)
    fork.grow(5, tag="fork")
    answer = await post(http, body(5, [], fork.note()))
    assert answer.status_code == 422
    assert "forked" in answer.text


# --- HTTP ---------------------------------------------------------------------------


async def test_only_post_is_served(http: httpx.AsyncClient) -> None:
    assert (await http.get("/add-checkpoint")).status_code == 405


async def test_a_body_over_the_limit_gets_413_unread(http: httpx.AsyncClient, log: Log) -> None:
    answer = await post(http, body(0, [], log.note()) + b"x" * MAX_REQUEST_BYTES)
    assert answer.status_code == 413


async def test_a_damaged_witness_state_gets_503_and_is_kept(
    http: httpx.AsyncClient, log: Log, tmp_path: Path
) -> None:
    state = tmp_path / "witness.json"
    state.write_text("{")
    assert (await post(http, body(0, [], log.note()))).status_code == 503
    assert state.read_text() == "{"


# --- monitoring ---------------------------------------------------------------------


def checkpoint_path(origin: str) -> str:
    """GET <monitoring prefix>/<origin hash>/checkpoint."""
    return f"/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint"


async def test_a_monitor_gets_the_newest_cosigned_checkpoint_with_both_signatures(
    http: httpx.AsyncClient, witness: Witness, log: Log
) -> None:
    stranger = sign_note(log.note().partition("\n\n")[0] + "\n", "other.example", log.key)
    cosignature = (await post(http, body(0, [], log.note() + stranger.partition("\n\n")[2]))).text
    answer = await http.get(checkpoint_path(ORIGIN))
    assert answer.status_code == 200
    assert answer.text == log.note() + cosignature  # the stranger's line is not served
    _, names = open_note(
        answer.text, [parse_verifier_key(log.vkey), parse_verifier_key(witness.vkey)]
    )
    assert names == [ORIGIN, "witness.example/w1"]


async def test_a_monitor_gets_404_for_a_log_never_cosigned(
    http: httpx.AsyncClient, log: Log
) -> None:
    assert (await http.get(checkpoint_path(ORIGIN))).status_code == 404
    assert (await http.get(checkpoint_path("example.com/unknown"))).status_code == 404


# --- the command --------------------------------------------------------------------


def test_parley_audit_witness_serve_cosigns_for_a_log_that_speaks_the_standard(
    tmp_path: Path,
) -> None:
    home = tmp_path / "auditor"
    make_keystore(home, make_state(account_id="audrey", name="Audrey"))
    log = Log("example.com/behind-the-sofa")
    log.grow(20)
    env = {**os.environ, "PARLEY_HOME": str(home), "PARLEY_PASSPHRASE": PASSPHRASE}
    command = [str(Path(sys.executable).parent / "parley"), "audit", "witness", "serve"]
    served = subprocess.Popen(
        [*command, "--listen", "127.0.0.1:0", "--log", log.vkey],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert served.stdout is not None
        key_line = served.stdout.readline()
        url_line = served.stdout.readline()
        vkey = key_line.removeprefix("witness key: ").strip()
        found = re.search(r"http://\S+/add-checkpoint", url_line)
        assert found, key_line + url_line
        with httpx.Client(timeout=10) as client:
            first = client.post(found.group(0), content=body(0, [], log.note(10)))
            assert first.status_code == 200, first.text
            text = log.note(10).partition("\n\n")[0] + "\n"
            verify_cosignature(text, first.text, parse_verifier_key(vkey))
            log.grow(1)
            stale = client.post(found.group(0), content=body(0, [], log.note()))
            assert (stale.status_code, stale.text) == (409, "10\n")
            assert stale.headers["content-type"] == SIZE_CONTENT_TYPE
            second = client.post(found.group(0), content=body(10, proof(log, 10), log.note()))
            assert second.status_code == 200, second.text
    finally:
        served.send_signal(signal.SIGINT)
        _, stderr = served.communicate(timeout=20)
    assert served.returncode == 0, stderr
    assert "409 " in stderr
    assert "Traceback" not in stderr
