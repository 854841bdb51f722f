"""An https server is held to the system's trust store: a session to a server whose
certificate nobody vouches for is refused before any request reaches it.

The session skips TLS set-up when all its URLs are plain http (loading the CA
bundle cost every command about 30 ms of CPU); this pins that https still verifies.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from client_sdk.client.http import HttpSession
from client_sdk.protocol.errors import TransportError


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
async def untrusted_https(tmp_path: Path) -> AsyncIterator[tuple[str, list[str]]]:
    """An https server with a self-signed certificate; the paths that reached it."""
    reached: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    cert_file, key_file = _self_signed(tmp_path)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="critical",
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:  # the socket listens already: a connection waits for the server to take it
        yield f"https://127.0.0.1:{sock.getsockname()[1]}", reached
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


async def test_an_https_server_with_an_untrusted_certificate_is_refused(
    untrusted_https: tuple[str, list[str]],
) -> None:
    url, reached = untrusted_https
    session = HttpSession(url)
    try:
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            await session.request("GET", "/v1/anything", auth=False)
    finally:
        await session.aclose()
    assert reached == []


async def test_a_list_with_one_https_url_verifies_it_even_after_plain_http_ones(
    untrusted_https: tuple[str, list[str]],
) -> None:
    url, reached = untrusted_https
    session = HttpSession(["http://127.0.0.1:9", url])
    try:
        session.fail_over("http://127.0.0.1:9")
        # refused at the handshake, then the dead plain URL: the error names both
        with pytest.raises(TransportError, match="cannot reach"):
            await session.request("GET", "/v1/anything", auth=False)
    finally:
        await session.aclose()
    assert reached == []
