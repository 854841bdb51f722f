"""Metrics and logs of a real `parley serve` process (issue 12).

One server for the module, on SQLite, with its metrics moved to a listener of
their own (``PARLEY_METRICS_LISTEN``) and its log at ``info`` in JSON. An
enrolled mediator makes real traffic once (a room, two sends, a page of
events, a refused token, a stream open during a send), and the tests read
what the process exported and logged about it: counters that moved by what
was done, labels that are route templates, one JSON object per log line with
the request id, route, status and duration, and no token, ciphertext or path.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from client_sdk.client import ParleyClient
from server.app import create_app
from server.config import Settings
from server.metrics import UNMATCHED
from tests.conftest import PASSPHRASE
from tests.e2e.harness import profile_env
from tests.support.cli import run_parley
from tests.support.server import ServerProcess, free_port, server_env

pytestmark = pytest.mark.slow

TIMEOUT = 10.0
STREAM = "/v1/rooms/{room_id}/stream"
IN_PROGRESS = "parley_http_requests_in_progress"
GRACE = 1.0
"""The module's server's shutdown grace period (seconds)."""
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent: a labelled counter appears on first use)."""
    return scrape.get((name, frozenset(labels.items())), 0.0)


@dataclass(frozen=True, slots=True)
class Traffic:
    """What the module's traffic did, and the scrapes around it."""

    server: ServerProcess
    metrics_url: str
    room_id: str
    token: str
    enrollment_token: str
    ciphertext: str
    bad_token: str
    refused_command: dict[str, Any]
    """What a `parley --json` command the server refused printed."""
    before: Samples
    during_stream: Samples
    after: Samples


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def _stream_closed(metrics_url: str) -> Samples:
    """A scrape once the server has seen the stream go (await it, with a deadline)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        scraped = scrape(metrics_url)
        if value(scraped, "parley_websocket_streams") == 0 or time.monotonic() > deadline:
            return scraped
        time.sleep(0.05)


async def _traffic(server: ServerProcess, home: Path, metrics_url: str) -> dict[str, Any]:
    client = ParleyClient.open(home, PASSPHRASE)
    try:
        token = await client.token()
        room = await client.create_room("Observed")
        auth = {"Authorization": f"Bearer {token}"}
        envelope = await client._sender.seal(
            room.room_id, {"type": "text", "text": "first"}, channel="plenary"
        )
        bad_token = secrets.token_urlsafe(24)
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            sent = await http.post(
                f"/v1/rooms/{room.room_id}/messages",
                content=envelope.model_dump_json(),
                headers={**auth, "Content-Type": "application/json", "X-Request-Id": "obs-send"},
            )
            assert sent.status_code == 201, sent.text
            page = await http.get(f"/v1/rooms/{room.room_id}/events?after=0", headers=auth)
            assert page.status_code == 200, page.text
            refused = await http.get(
                f"/v1/rooms/{room.room_id}",
                headers={"Authorization": f"Bearer {bad_token}", "X-Request-Id": "obs-refused"},
            )
            assert refused.status_code == 401
            assert refused.json()["error"]["request_id"] == "obs-refused"
        host = server.url.removeprefix("http://")
        async with connect(
            f"ws://{host}/v1/rooms/{room.room_id}/stream?after={sent.json()['seq']}",
            additional_headers=auth,
        ) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) == {"type": "ready"}
            during_stream = await asyncio.to_thread(scrape, metrics_url)
            await client.send(room.room_id, "second")
            frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert frame["type"] == "batch"
        return {
            "room_id": room.room_id,
            "token": token,
            "ciphertext": envelope.ciphertext,
            "bad_token": bad_token,
            "during_stream": during_stream,
        }
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    root = tmp_path_factory.mktemp("observed")
    metrics_port = free_port()
    env = server_env(
        root / "server",
        None,
        PARLEY_METRICS_LISTEN=f"127.0.0.1:{metrics_port}",
        PARLEY_LOG_FORMAT="json",
        PARLEY_SHUTDOWN_GRACE_SECONDS=str(GRACE),
    )
    server = ServerProcess(env, root / "server.log", log_level="info")
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    server.start()
    try:
        issued = run_parley(["admin", "enroll", "--role", "mediator", "--name", "Mona"], env=env)
        enrollment_token = issued.ok().stdout.strip()
        home = root / "mona"
        enrolled = run_parley(
            ["enroll", "--server", server.url, "--token", enrollment_token, "--json"],
            env=profile_env(home),
        )
        enrolled.ok()
        before = scrape(metrics_url)
        done = asyncio.run(_traffic(server, home, metrics_url))
        refused = run_parley(
            ["agree", "show", "no-such-room", "x", "--json"], env=profile_env(home)
        )
        assert refused.returncode == 1, refused.describe()
        after = _stream_closed(metrics_url)
        yield Traffic(
            server=server,
            metrics_url=metrics_url,
            enrollment_token=enrollment_token,
            before=before,
            after=after,
            refused_command=refused.json_error(),
            **done,
        )
    finally:
        server.stop()


def _delta(traffic: Traffic, name: str, **labels: str) -> float:
    return value(traffic.after, name, **labels) - value(traffic.before, name, **labels)


def test_metrics_are_served_on_their_own_listener_only(traffic: Traffic) -> None:
    on_main = httpx.get(f"{traffic.server.url}/metrics", timeout=TIMEOUT)

    assert on_main.status_code == 404
    assert on_main.json()["error"]["code"] == "not_found"
    assert value(traffic.after, IN_PROGRESS) == 0


def test_request_counters_move_with_traffic_labelled_by_route_template(traffic: Traffic) -> None:
    requests = "parley_http_requests_total"
    sends = {"method": "POST", "route": "/v1/rooms/{room_id}/messages", "status": "201"}

    assert _delta(traffic, requests, **sends) == 2  # one by hand, one by the SDK
    assert _delta(traffic, requests, method="GET", route="/v1/rooms/{room_id}", status="401") == 1
    assert _delta(traffic, requests, method="GET", route="/v1/rooms", status="200") == 0
    latency = "parley_http_request_duration_seconds_count"
    assert _delta(traffic, latency, method="POST", route="/v1/rooms/{room_id}/messages") == 2


def test_labels_are_templates_never_concrete_paths(traffic: Traffic, tmp_path: Path) -> None:
    templates = {*create_app(Settings(data_dir=tmp_path)).openapi()["paths"], STREAM}
    routes = {value for (_, labels) in traffic.after for name, value in labels if name == "route"}

    assert routes
    assert routes <= templates | {UNMATCHED}
    assert not any(traffic.room_id in route for route in routes)


def test_appended_leaves_and_group_commits_are_counted(traffic: Traffic) -> None:
    assert _delta(traffic, "parley_log_leaves_appended_total", type="message") == 2
    commits = _delta(traffic, "parley_group_commit_size_count")
    blocks = _delta(traffic, "parley_group_commit_size_sum")
    assert commits >= 2  # each send's transaction, at least
    assert blocks >= commits


def test_open_streams_and_fanout_lag_are_measured(traffic: Traffic) -> None:
    assert value(traffic.during_stream, "parley_websocket_streams") == 1
    assert value(traffic.after, "parley_websocket_streams") == 0
    assert _delta(traffic, "parley_fanout_lag_seconds_count") >= 1


def _log_lines(traffic: Traffic) -> list[dict[str, Any]]:
    lines = traffic.server.log_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_every_log_line_is_a_json_object(traffic: Traffic) -> None:
    lines = _log_lines(traffic)  # raises on a line that is not JSON

    assert lines
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_access_lines_carry_request_id_route_status_and_duration(traffic: Traffic) -> None:
    access = [line for line in _log_lines(traffic) if line["logger"] == "parley.access"]
    by_id = {line["request_id"]: line for line in access}

    sent = by_id["obs-send"]
    assert (sent["method"], sent["route"], sent["status"]) == (
        "POST",
        "/v1/rooms/{room_id}/messages",
        201,
    )
    assert sent["duration_ms"] > 0
    refused = by_id["obs-refused"]
    assert (refused["route"], refused["status"]) == ("/v1/rooms/{room_id}", 401)
    streams = [line for line in access if line["route"] == STREAM]
    assert [line["status"] for line in streams] == [1000]  # the client closed it
    assert all(len(line["request_id"]) == 32 for line in access if line not in (sent, refused))


def test_a_refused_command_prints_the_request_id_of_its_log_line(traffic: Traffic) -> None:
    printed = traffic.refused_command
    access = [line for line in _log_lines(traffic) if line["logger"] == "parley.access"]

    assert printed["code"] == "not_found"
    assert "404 not_found" in printed["message"]
    [line] = [line for line in access if line["request_id"] == printed["request_id"]]
    assert line["status"] == 404


def test_the_log_holds_no_token_ciphertext_or_path(traffic: Traffic) -> None:
    log = traffic.server.log_path.read_text()

    for secret in (traffic.token, traffic.bad_token, traffic.enrollment_token):
        assert secret not in log
    assert traffic.ciphertext[:64] not in log
    assert traffic.room_id not in log  # paths are never logged, only route templates
    assert "after=" not in log


async def _held_request(traffic: Traffic) -> float:
    """Send SIGTERM while a request waits for a body that never comes; how long the
    process took to exit."""
    process = traffic.server.process
    assert process is not None
    never = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b'{"envelope": '
        await never.wait()

    async with httpx.AsyncClient(base_url=traffic.server.url, timeout=TIMEOUT) as http:
        held = asyncio.create_task(
            http.post(
                f"/v1/rooms/{traffic.room_id}/messages",
                content=body(),
                headers={"Content-Type": "application/json", "Content-Length": "1000"},
            )
        )
        async with asyncio.timeout(TIMEOUT):
            while True:
                if value(await asyncio.to_thread(scrape, traffic.metrics_url), IN_PROGRESS):
                    break
                await asyncio.sleep(0.02)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            assert await asyncio.to_thread(process.wait, TIMEOUT) == 0
            return time.monotonic() - signalled
        finally:
            held.cancel()  # it is still writing a body that never ends


def test_a_request_still_running_does_not_hold_the_process_past_its_grace(
    traffic: Traffic,
) -> None:
    start = traffic.server.log_path.stat().st_size
    took = asyncio.run(_held_request(traffic))
    with traffic.server.log_path.open() as log:
        log.seek(start)
        added = log.read()
    traffic.server.start()  # for any test after this one

    # It waited out its grace for the request, which would otherwise never end; the
    # margin is for a loaded machine (signal delivery, the interpreter's exit).
    assert GRACE <= took < GRACE + TIMEOUT
    assert "request cancelled: the shutdown grace period ran out" in added
    assert "Traceback" not in added


def test_a_metrics_address_in_use_is_one_line_and_exit_2(traffic: Traffic, tmp_path: Path) -> None:
    taken = traffic.metrics_url.removeprefix("http://").removesuffix("/metrics")
    env = server_env(tmp_path / "second", None, PARLEY_METRICS_LISTEN=taken)

    refused = run_parley(["serve", "--port", str(free_port())], env=env)

    assert refused.returncode == 2, refused.describe()
    assert refused.stderr == (
        f"error: cannot listen for metrics on {taken} (PARLEY_METRICS_LISTEN): "
        "Address already in use\n"
    )
