"""The server is handed ciphertext only: no plaintext leaves the sender's device.

See docs/design.md §1.1.
"""

from __future__ import annotations

from client_sdk.protocol.encoding import b64e
from tests.support.attacks import Talks

PLAINTEXT = "We can release forty detainees on Thursday if the corridor stays open."


def _encodings(text: str) -> list[bytes]:
    """The text, and its base64url at each of the three alignments it could take inside
    a longer encoded value (whole 3-byte groups only, so the characters are exact)."""
    raw = text.encode()
    forms = [raw]
    for shift in range(3):
        tail = raw[shift:]
        forms.append(b64e(tail[: len(tail) - len(tail) % 3]).encode())
    return forms


async def test_no_request_carries_the_plaintext(talks: Talks) -> None:
    await talks.alice.send(talks.room_id, PLAINTEXT)
    assert [m.text async for m in talks.alice.messages(talks.room_id)] == [PLAINTEXT]
    assert [m.text async for m in talks.bob.messages(talks.room_id)] == [PLAINTEXT]

    requests = talks.server.exchanges
    assert {"/v1/enroll", talks.messages_path, talks.events_path} <= {e.path for e in requests}
    for exchange in requests:
        for form in _encodings(PLAINTEXT):
            assert form not in exchange.body, f"{exchange.method} {exchange.path} leaks it"
            assert form.decode() not in exchange.url, f"{exchange.method} {exchange.url} leaks it"
