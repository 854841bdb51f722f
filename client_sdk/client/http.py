"""HTTP plumbing: one authenticated `httpx.AsyncClient`, errors mapped to exceptions.

The SDK logs in by itself (challenge-response with the device key) and logs
in again when its token is about to expire or is refused.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import (
    AuthenticationError,
    ClientClosedError,
    ProtocolError,
    TransportError,
    api_error,
)
from client_sdk.protocol.keys import SigLabel, SigningKey
from client_sdk.protocol.statements import login_payload

TOKEN_MARGIN_MS = 60_000


def raise_for_error(response: httpx.Response) -> None:
    """Raise the typed `APIError` for an error answer."""
    if response.is_success:
        return
    code, message = "error", response.reason_phrase or "request failed"
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    raise api_error(response.status_code, code, message)


class HttpSession:
    """Requests to one server as one device."""

    def __init__(
        self,
        server: str,
        *,
        device_id: str | None = None,
        device_key: SigningKey | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.server = server.rstrip("/")
        self.device_id = device_id
        self.device_key = device_key
        self._client = httpx.AsyncClient(base_url=self.server, transport=transport, timeout=timeout)
        self._token: str | None = None
        self._token_expires_at = 0

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._client.is_closed:
            raise ClientClosedError("the client is closed")
        try:
            return await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach {self.server}: {exc}") from exc

    async def login(self) -> str:
        """Log in with the device key and keep the bearer token."""
        if self.device_id is None or self.device_key is None:
            raise AuthenticationError(401, "unauthenticated", "no device key to log in with")
        response = await self._send(
            "POST", "/v1/auth/challenge", json={"device_id": self.device_id}
        )
        raise_for_error(response)
        nonce = _field(response, "nonce")
        signature = self.device_key.sign(SigLabel.LOGIN, login_payload(self.device_id, nonce))
        response = await self._send(
            "POST",
            "/v1/auth/token",
            json={"device_id": self.device_id, "nonce": nonce, "signature": b64e(signature)},
        )
        raise_for_error(response)
        self._token = _field(response, "token")
        self._token_expires_at = int(response.json()["expires_at"])
        return self._token

    async def token(self) -> str:
        """A bearer token valid for at least another minute."""
        now = time.time_ns() // 1_000_000
        if self._token is None or self._token_expires_at - now < TOKEN_MARGIN_MS:
            return await self.login()
        return self._token

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> Any:
        """Send a request and return the decoded JSON answer (None for 204)."""
        headers = {"Authorization": f"Bearer {await self.token()}"} if auth else {}
        response = await self._send(method, path, json=json, params=params, headers=headers)
        if auth and response.status_code == 401:
            headers = {"Authorization": f"Bearer {await self.login()}"}
            response = await self._send(method, path, json=json, params=params, headers=headers)
        raise_for_error(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ProtocolError(f"{method} {path}: answer is not JSON") from exc


def _field(response: httpx.Response, name: str) -> str:
    try:
        value = response.json()[name]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"answer lacks {name}") from exc
    if not isinstance(value, str):
        raise ProtocolError(f"{name} is not a string")
    return value
