"""Unauthenticated floods (issue 10): the routes that need no token, and failed
authentications, are rate-limited per client address (429, the JSON error body and
Retry-After); expired login challenges and tokens are purged, a few with each new
challenge and all of them on a schedule, so no flood leaves rows behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from client_sdk.protocol.models import Role
from server.api.limits import client_key
from server.services.identity import PURGE_PER_CHALLENGE
from tests.api.conftest import Api, MakeApi
from tests.api.factories import Actor, ManualClock, assert_error, login
from tests.conftest import BASE_URL

BURST = 5
FLOODER = ("203.0.113.7", 40000)
NEIGHBOUR = ("198.51.100.9", 40000)

Client = Callable[[tuple[str, int]], httpx.AsyncClient]


@pytest.fixture
async def limited(make_api: MakeApi) -> Api:
    """An app whose per-address bucket holds `BURST` requests and barely refills."""
    return await make_api(public_rate_limit_per_second=0.001, public_rate_limit_burst=BURST)


@pytest.fixture
async def client_at(limited: Api) -> AsyncIterator[Client]:
    """Factory: an HTTP client on `limited` that comes from the given address."""
    clients: list[httpx.AsyncClient] = []

    def factory(address: tuple[str, int]) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=limited.app, client=address)
        clients.append(httpx.AsyncClient(transport=transport, base_url=BASE_URL))
        return clients[-1]

    yield factory
    for client in clients:
        await client.aclose()


async def _rows(api: Api, table: str) -> int:
    return len((await api.snapshot())[table])


def _assert_rate_limited(response: httpx.Response) -> None:
    assert_error(response, 429, "rate_limited", mentions="this address")
    assert int(response.headers["Retry-After"]) >= 1


async def test_challenge_flood_is_rate_limited(limited: Api, client_at: Client) -> None:
    alice = await limited.actor(Role.PARTY, "Alice")  # from the test client's own address
    flooder = client_at(FLOODER)
    body = {"device_id": alice.keys.device_id}
    for _ in range(BURST):
        assert (await flooder.post("/v1/auth/challenge", json=body)).status_code == 200
    stored = await _rows(limited, "login_challenges")

    refused = await flooder.post("/v1/auth/challenge", json=body)

    _assert_rate_limited(refused)
    assert await _rows(limited, "login_challenges") == stored


async def test_a_flood_from_one_address_leaves_other_addresses_served(
    limited: Api, client_at: Client
) -> None:
    alice = await limited.actor(Role.PARTY, "Alice")
    flooder = client_at(FLOODER)
    for _ in range(BURST + 1):
        await flooder.post("/v1/auth/challenge", json={"device_id": alice.keys.device_id})

    assert await login(client_at(NEIGHBOUR), alice.keys.device_id, alice.keys.device_key)


async def test_a_flood_of_failed_logins_is_rate_limited(limited: Api, client_at: Client) -> None:
    flooder = client_at(FLOODER)
    body = {"device_id": "d1", "nonce": "AAAA", "signature": "AAAA"}
    for _ in range(BURST):
        assert_error(await flooder.post("/v1/auth/token", json=body), 401, "unauthenticated")

    _assert_rate_limited(await flooder.post("/v1/auth/token", json=body))


async def test_a_flood_of_enrollment_attempts_is_rate_limited(
    limited: Api, client_at: Client
) -> None:
    flooder = client_at(FLOODER)
    for _ in range(BURST):
        answer = await flooder.post("/v1/enroll/preview", json={"token": "guess"})
        assert_error(answer, 401, "unauthenticated")

    _assert_rate_limited(await flooder.post("/v1/enroll", json={"token": "guess"}))


async def test_guessing_bearer_tokens_is_rate_limited(limited: Api, client_at: Client) -> None:
    flooder = client_at(FLOODER)
    for i in range(BURST):
        answer = await flooder.get("/v1/accounts/me", headers={"Authorization": f"Bearer g{i}"})
        assert_error(answer, 401, "unauthenticated")

    answer = await flooder.get("/v1/accounts/me", headers={"Authorization": "Bearer again"})
    _assert_rate_limited(answer)


async def test_an_authenticated_device_is_not_charged_to_its_address(
    limited: Api, client_at: Client
) -> None:
    alice = await limited.actor(Role.PARTY, "Alice")
    here = client_at(FLOODER)
    for _ in range(BURST):  # the address's share, used up
        await here.post("/v1/auth/challenge", json={"device_id": alice.keys.device_id})

    for _ in range(3 * BURST):
        assert (await here.get("/v1/accounts/me", headers=alice.headers)).status_code == 200


def test_addresses_are_counted_alone_and_ipv6_per_64() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key(None) == "unknown"


# --- purging ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def timed(make_api: MakeApi, clock: ManualClock) -> Api:
    """An app on a manual clock (challenges live 60 s, tokens 1 h)."""
    return await make_api(clock=clock, challenge_ttl_seconds=60, token_ttl_seconds=3600)


async def _challenges(api: Api, actor: Actor, count: int) -> None:
    for _ in range(count):
        answer = await api.http.post("/v1/auth/challenge", json={"device_id": actor.keys.device_id})
        assert answer.status_code == 200, answer.text


async def test_expired_challenges_are_purged(timed: Api, clock: ManualClock) -> None:
    alice = await timed.actor(Role.PARTY, "Alice")
    await _challenges(timed, alice, 12)
    clock.advance(seconds=61)

    assert await timed.identity.purge_sessions() >= 12
    assert await _rows(timed, "login_challenges") == 0


async def test_each_new_challenge_clears_expired_ones(timed: Api, clock: ManualClock) -> None:
    alice = await timed.actor(Role.PARTY, "Alice")
    await _challenges(timed, alice, 3 * PURGE_PER_CHALLENGE)
    clock.advance(seconds=61)

    await _challenges(timed, alice, 3)

    assert await _rows(timed, "login_challenges") == 3


async def test_a_used_challenge_leaves_no_row(timed: Api) -> None:
    await timed.actor(Role.PARTY, "Alice")  # enrolled and logged in

    assert await _rows(timed, "login_challenges") == 0


async def test_expired_tokens_are_purged_and_live_ones_kept(timed: Api, clock: ManualClock) -> None:
    alice = await timed.actor(Role.PARTY, "Alice")
    clock.advance(seconds=3000)
    bob = await timed.actor(Role.PARTY, "Bob")
    clock.advance(seconds=601)  # Alice's token expired, Bob's has 2999 s left

    await timed.identity.purge_sessions()

    assert await _rows(timed, "access_tokens") == 1
    assert (await timed.http.get("/v1/accounts/me", headers=bob.headers)).status_code == 200
    assert_error(
        await timed.http.get("/v1/accounts/me", headers=alice.headers), 401, "unauthenticated"
    )


async def test_expired_challenges_are_purged_on_a_schedule(
    make_api: MakeApi, clock: ManualClock
) -> None:
    api = await make_api(clock=clock, challenge_ttl_seconds=60, session_sweep_seconds=0.05)
    alice = await api.actor(Role.PARTY, "Alice")
    await _challenges(api, alice, 2)
    clock.advance(seconds=61)

    for _ in range(200):  # the purge runs every 0.05 s; give it up to 10 s
        if not await _rows(api, "login_challenges"):
            return
        await asyncio.sleep(0.05)
    pytest.fail("expired challenges were still there after 10 s")
