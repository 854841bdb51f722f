"""A lying acknowledgement: a send returns only once its own envelope is proven in the log."""

from __future__ import annotations

import json
from typing import Any

import pytest

from client_sdk import VerificationError
from tests.support.attacks import Talks


async def test_a_receipt_for_another_envelope_than_the_one_sent_is_refused(talks: Talks) -> None:
    await talks.alice.send(talks.room_id, "Our first offer.")
    [first] = talks.server.sent("POST", talks.messages_path)
    # The server swaps the second send for a retry of the first, whose receipt it already has:
    # the second offer is never stored, yet the answer is a genuine receipt.
    earlier: dict[str, Any] = json.loads(first.body)
    talks.server.rewrite_request("POST", talks.messages_path, lambda _sent: earlier)

    with pytest.raises(VerificationError, match=r"index 3: (the leaf's \w+ does not|not included)"):
        await talks.alice.send(talks.room_id, "Our second offer.")
