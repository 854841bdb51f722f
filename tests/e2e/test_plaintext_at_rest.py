"""The server stores only ciphertext: a plaintext sent through a real server shows up
nowhere in what it keeps, in the clear, in hex, or in base64 of any alignment."""

from __future__ import annotations

import base64

import pytest

from tests.e2e.conftest import Negotiation
from tests.e2e.harness import Deployment, encoded_forms, random_marker

pytestmark = pytest.mark.slow


async def _stored(deployment: Deployment) -> dict[str, bytes]:
    """Everything the deployment keeps, by where it lies."""
    stored = {str(path): data for path, data in deployment.files_at_rest().items()}
    if deployment.backend == "postgres":
        rows = await deployment.rows_at_rest()
        stored.update({table: text.encode() for table, text in rows.items()})
    else:
        names = {path.rsplit("/", 1)[-1] for path in stored}
        assert {"parley.db", "parley.db-wal"} <= names
    return stored


def _where(needle: bytes, stored: dict[str, bytes]) -> list[str]:
    return [place for place, data in stored.items() if needle in data]


async def test_sent_plaintext_appears_nowhere_in_the_servers_storage(
    deployment: Deployment, negotiation: Negotiation
) -> None:
    short, inner = random_marker(), random_marker()
    long_text = f"Opening terms. {inner.decode()} " + "Clause text. " * 400
    receipts = [
        await negotiation.alice.send(negotiation.room_id, short.decode()),
        await negotiation.bob.send(negotiation.room_id, long_text),
    ]
    read = [m.text async for m in negotiation.mediator.messages(negotiation.room_id)]
    assert read == [short.decode(), long_text]

    stored = await _stored(deployment)

    # The scan does see the rows that hold these very messages...
    for receipt in receipts:
        assert _where(receipt.message_id.encode(), stored)
    # ...and no form of either plaintext.
    for marker in (short, inner):
        for form, needle in encoded_forms(marker).items():
            assert _where(needle, stored) == [], f"plaintext found as {form}"


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b'{"text": "'])
def test_the_scan_would_catch_the_marker_in_any_encoding_at_any_offset(prefix: bytes) -> None:
    marker = random_marker()
    stored = prefix + marker + b'"}'
    encodings = {
        "raw": stored,
        "hex": stored.hex().encode(),
        "base64": base64.b64encode(stored),
        "base64url": base64.urlsafe_b64encode(stored).rstrip(b"="),
    }
    forms = encoded_forms(marker).values()
    for name, blob in encodings.items():
        assert any(form in blob for form in forms), name
