"""A network attacker who captured a login cannot replay it (docs/design.md §3)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import BASE_URL
from tests.support.attacks import Talks


async def test_a_captured_login_replayed_is_refused(app: FastAPI, talks: Talks) -> None:
    await talks.alice.token()
    [login] = talks.server.sent("POST", "/v1/auth/token")
    assert login.status == 200

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as attacker:
        replay = await attacker.post(
            "/v1/auth/token", content=login.body, headers={"Content-Type": "application/json"}
        )

    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "unauthenticated"
    assert "token" not in replay.json()
