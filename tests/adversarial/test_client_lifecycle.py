"""A client's life is checked: once closed, every use raises `ClientClosedError` (a
`ParleyError`), never an httpx or runtime error from deep inside."""

from __future__ import annotations

import pytest

from client_sdk.client import ClientState, ParleyClient
from client_sdk.protocol.errors import ClientClosedError, ParleyError
from tests.adversarial.conftest import BehindSeam
from tests.support.attacks import Talks


def state_of(client: ParleyClient) -> ClientState:
    """The client's state, read afresh (so the checker does not narrow it)."""
    return client.state


async def test_a_client_opens_on_first_use_and_closes_once(
    talks: Talks, behind_seam: BehindSeam
) -> None:
    client, _ = behind_seam(talks.bob)
    assert state_of(client) is ClientState.UNOPENED

    await client.room(talks.room_id)
    assert state_of(client) is ClientState.OPENED

    await client.aclose()
    await client.aclose()  # closing twice is harmless
    assert state_of(client) is ClientState.CLOSED


async def test_every_use_of_a_closed_client_raises_client_closed(
    talks: Talks, behind_seam: BehindSeam
) -> None:
    client, _ = behind_seam(talks.bob)
    await client.aclose()

    assert issubclass(ClientClosedError, ParleyError)
    with pytest.raises(ClientClosedError):
        await client.send(talks.room_id, "too late")
    with pytest.raises(ClientClosedError):
        [m async for m in client.messages(talks.room_id)]
    with pytest.raises(ClientClosedError):
        await client.room(talks.room_id)
    with pytest.raises(ClientClosedError):
        client.whoami()
    with pytest.raises(ClientClosedError):
        async with client:
            pass


async def test_a_client_closed_by_its_context_cannot_be_used(
    talks: Talks, behind_seam: BehindSeam
) -> None:
    client, _ = behind_seam(talks.bob)
    async with client as entered:
        assert state_of(entered) is ClientState.OPENED
        await entered.room(talks.room_id)

    with pytest.raises(ClientClosedError):
        await client.rooms()


async def test_closing_mid_read_stops_the_read_with_client_closed(
    talks: Talks, behind_seam: BehindSeam
) -> None:
    for n in range(3):
        await talks.bob.send(talks.room_id, f"offer {n}")
    client, _ = behind_seam(talks.mediator)
    reading = client.messages(talks.room_id)
    first = await anext(reading)
    await client.aclose()

    with pytest.raises(ClientClosedError):
        await anext(reading)
    assert first.text == "offer 0"
