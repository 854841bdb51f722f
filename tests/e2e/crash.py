"""Killing a real server at random moments, and what tests do around each kill.

A `CrashPlan` draws every kill moment from one seeded generator: the seed is
printed with each test's output, and ``PARLEY_CRASH_SEED=N`` reruns a failure
with the same moments (as far as the machine's timing repeats);
``PARLEY_CRASH_ROUNDS=N`` sets how many kills each scenario makes (the long
run: ``PARLEY_CRASH_ROUNDS=50``, docs/design.md §8). The moment of a kill is
a fault injected, not an event awaited: it is the one place a test sleeps.

A `Crasher` is the server as the test's clients see it: it kills it
(SIGKILL), checks what the crash left on disk while it is down
(`at_rest.check_at_rest`), and restarts it; a client whose request failed
awaits `until_up` and retries. `Checkpoints` proves every checkpoint a client
verified before a kill consistent with the log after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from client_sdk.client import Message, ParleyClient, Receipt
from client_sdk.protocol.encoding import b64d
from client_sdk.protocol.errors import TransportError
from client_sdk.protocol.merkle import verify_consistency
from client_sdk.protocol.note import parse_verifier_key, verify_checkpoint
from client_sdk.protocol.wire.logs import ConsistencyOut, LogOut
from tests.e2e.at_rest import AtRest, check_at_rest
from tests.e2e.harness import Deployment

T = TypeVar("T")

SEED_ENV = "PARLEY_CRASH_SEED"
ROUNDS_ENV = "PARLEY_CRASH_ROUNDS"
RESTART_TIMEOUT = 120.0
"""How long a client waits for the server to come back (a start on a loaded machine)."""
ARRIVAL_TIMEOUT = 60.0
"""How long a follower may take to catch up (its reconnection backs off up to 5 s)."""
ATTEMPTS = 20
"""Tries of one operation before the test gives up on it (each after the server is up)."""


@dataclass(slots=True)
class CrashPlan:
    """How many kills a scenario makes, and the seeded generator of their moments."""

    seed: int
    rounds: int
    rng: random.Random

    @classmethod
    def for_scenario(cls, scenario: str, *, rounds: int) -> CrashPlan:
        """The plan of `scenario` (its generator seeded with the seed and its name, so
        each scenario reruns alone); prints how to rerun it."""
        seed = int(os.environ.get(SEED_ENV) or secrets.randbits(32))
        rounds = int(os.environ.get(ROUNDS_ENV) or rounds)
        print(f"crash plan for {scenario}: {SEED_ENV}={seed} {ROUNDS_ENV}={rounds}")
        return cls(seed, rounds, random.Random(f"{seed}/{scenario}"))

    async def moment(self, longest: float) -> None:
        """Let a random part of `longest` seconds pass: the moment the fault strikes."""
        await asyncio.sleep(self.rng.uniform(0, longest))


@dataclass(slots=True)
class Crasher:
    """The deployment's server, killed and restarted by a test while clients use it."""

    deployment: Deployment
    planned: int
    """How many kills the test will make: while more are to come, the next server
    process is prepared in the background (`ServerProcess.prepare`), so a restart
    does not wait for its imports."""
    kills: int = 0
    _up: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._up.set()
        if self.planned:
            self.deployment.server.prepare()

    def kill(self) -> None:
        """SIGKILL the server, now."""
        self._up.clear()
        self.deployment.crash()
        self.kills += 1

    async def at_rest(self) -> AtRest:
        """What the crash left: every invariant of `at_rest` must hold (the server is down)."""
        found = await check_at_rest(self.deployment.database_url, self.deployment.data_dir)
        assert not found.problems, "after kill {}:\n{}".format(
            self.kills, "\n".join(found.problems)
        )
        return found

    async def restart(self) -> None:
        """Start the server again and let waiting clients go on."""
        await asyncio.to_thread(self.deployment.restart)
        self._up.set()
        if self.kills < self.planned:
            self.deployment.server.prepare()

    async def crash_and_restart(self) -> AtRest:
        """Kill, check what is at rest, restart; what was at rest."""
        self.kill()
        found = await self.at_rest()
        await self.restart()
        return found

    async def until_up(self) -> None:
        """Return once the server is up (at once if it was never killed)."""
        await asyncio.wait_for(self._up.wait(), RESTART_TIMEOUT)

    def during(self, operation: Awaitable[T]) -> asyncio.Task[T | None]:
        """Run `operation` in the background, for a kill to cut: its answer, or None if
        the kill took it (a `TransportError`)."""

        async def run() -> T | None:
            try:
                return await operation
            except TransportError:
                return None

        return asyncio.create_task(run())

    async def retried(self, call: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """`call()`'s answer, retried after every `TransportError` once the server is up
        again; also how many attempts failed so."""
        for failed in range(ATTEMPTS):
            try:
                return await call(), failed
            except TransportError:
                await self.until_up()
        raise AssertionError(f"no answer after {ATTEMPTS} attempts")


@dataclass(slots=True)
class Sends:
    """Messages sent by several clients until told to stop, each retried under its
    message id until acknowledged; who sent what, and what each receipt said."""

    crasher: Crasher
    room_id: str
    acknowledged: dict[str, Receipt] = field(default_factory=dict)
    texts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Message id -> (sender's name, text)."""
    answers_lost: set[str] = field(default_factory=set)
    """Message ids whose first attempt got no answer (sent again under the same id)."""
    in_flight: set[str] = field(default_factory=set)
    """Message ids being sent now (not acknowledged yet)."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    @asynccontextmanager
    async def sending(self, clients: dict[str, ParleyClient]) -> AsyncIterator[None]:
        """Each of `clients` (by name) sends while the block runs; on leaving it, the
        messages in flight are finished."""
        async with asyncio.TaskGroup() as group:
            for name, client in clients.items():
                group.create_task(self._keep_sending(client, name))
            try:
                yield
            finally:
                self.stop.set()

    async def _keep_sending(self, client: ParleyClient, name: str) -> None:
        number = 0
        while not self.stop.is_set():
            message_id, text = os.urandom(16).hex(), f"{name} {number}"
            self.texts[message_id] = (name, text)
            self.in_flight.add(message_id)
            receipt, failed = await self.crasher.retried(
                functools.partial(client.send, self.room_id, text, message_id=message_id)
            )
            if failed:
                self.answers_lost.add(message_id)
            async with self._progress:
                self.in_flight.discard(message_id)
                self.acknowledged[message_id] = receipt
                self._progress.notify_all()
            number += 1

    async def more(self, count: int) -> None:
        """Return once `count` more sends were acknowledged."""
        target = len(self.acknowledged) + count
        async with self._progress:
            await asyncio.wait_for(
                self._progress.wait_for(lambda: len(self.acknowledged) >= target), ARRIVAL_TIMEOUT
            )


@dataclass(slots=True)
class Follower:
    """An SDK client following a room (`messages(follow=True)`) in the background."""

    client: ParleyClient
    room_id: str
    seen: list[Message] = field(default_factory=list)
    error: BaseException | None = None
    """What stopped the follower, if anything did."""
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Follower]:
        """Follow while the block runs."""
        self._task = task = asyncio.create_task(self._follow())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self) -> None:
        try:
            async for message in self.client.messages(self.room_id, follow=True):
                async with self._arrived:
                    self.seen.append(message)
                    self._arrived.notify_all()
        except Exception as exc:  # handed to whoever waits in `reached`
            async with self._arrived:
                self.error = exc
                self._arrived.notify_all()

    async def reached(self, seq: int) -> None:
        """Return once a message at or past `seq` arrived (raise what stopped the follower)."""
        async with self._arrived:
            try:
                await asyncio.wait_for(
                    self._arrived.wait_for(
                        lambda: (
                            self.error is not None or (bool(self.seen) and self.seen[-1].seq >= seq)
                        )
                    ),
                    ARRIVAL_TIMEOUT,
                )
            except TimeoutError:
                last = self.seen[-1].seq if self.seen else None
                where = io.StringIO()
                if self._task is not None:
                    self._task.print_stack(file=where)
                raise AssertionError(
                    f"the follower is at {last}, not {seq}, after {ARRIVAL_TIMEOUT} s; "
                    f"it waits in:\n{where.getvalue()}"
                ) from None
        if self.error is not None:
            raise AssertionError(f"the follower stopped: {self.error!r}") from self.error


def moment_reached(
    condition: Callable[[int, int], bool],
) -> tuple[Callable[[asyncio.Task[object]], Awaitable[None]], Callable[[int, int], None]]:
    """A progress callback (done, total) and an awaitable `reached(task)` that returns
    once `condition` held for a progress report, or `task` ended first."""
    event = asyncio.Event()

    def progress(done: int, total: int) -> None:
        if condition(done, total):
            event.set()

    async def reached(task: asyncio.Task[object]) -> None:
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait(
                {waiter, task}, timeout=ARRIVAL_TIMEOUT, return_when="FIRST_COMPLETED"
            )
        finally:
            waiter.cancel()

    return reached, progress


class AnswerLost(httpx.AsyncBaseTransport):
    """A transport that passes requests on but, once armed, loses the answer to the
    first `times` that `matches`, as a server killed between its commit and its reply
    would."""

    def __init__(self, matches: Callable[[httpx.Request], bool], *, times: int = 1) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._matches = matches
        self._times = times
        self._armed = False
        self.lost: list[str] = []
        """The requests whose answers were lost."""

    def arm(self) -> None:
        """Lose answers from now on."""
        self._armed = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`; return its answer, or lose it."""
        response = await self._inner.handle_async_request(request)
        if self._armed and len(self.lost) < self._times and self._matches(request):
            await response.aread()
            await response.aclose()
            self.lost.append(f"{request.method} {request.url.path}")
            raise httpx.RemoteProtocolError(
                "the server went away before answering", request=request
            )
        return response

    async def aclose(self) -> None:
        """Close the connections."""
        await self._inner.aclose()


@dataclass(slots=True)
class Checkpoints:
    """Proves the checkpoints clients verified before a kill consistent with the log's
    newest checkpoint after it, with the server's own consistency proofs."""

    proven: dict[str, dict[int, bytes]] = field(default_factory=dict)
    """Per log, the checkpoints (size -> root) proven so far."""

    async def prove(self, log_id: str, prover: ParleyClient, seen: Iterable[ParleyClient]) -> int:
        """Check every checkpoint of `log_id` any client in `seen` verified, not proven
        before, against the newest one, fetched by `prover` and checked under the
        key it pinned; the newest size."""
        # What the clients verified so far, before the newest is fetched: sends go on
        # meanwhile, and a checkpoint verified after it would be larger than it.
        todo: dict[int, bytes] = {}
        for client in seen:
            for size, root in client.logs.roots.get(log_id, {}).items():
                assert todo.get(size, root) == root, f"log {log_id}: two roots for size {size}"
                todo[size] = root
        info = await prover.http.call(LogOut, "GET", f"/v1/logs/{log_id}")
        pinned = prover.keystore.log_key(log_id) or info.vkey
        assert pinned == info.vkey, f"log {log_id}: the log key changed across the crash"
        note = await prover.http.text(f"/v1/logs/{log_id}/checkpoint")
        newest = verify_checkpoint(note, info.origin, parse_verifier_key(pinned))
        proven = self.proven.setdefault(log_id, {})
        for size, root in sorted(todo.items()):
            assert proven.get(size, root) == root, f"log {log_id}: two roots for size {size}"
            if size in proven or size == 0:
                continue
            assert size <= newest.size, (
                f"log {log_id}: a checkpoint of size {size} was verified before, and the log "
                f"is {newest.size} now: rolled back"
            )
            answer = await prover.http.call(
                ConsistencyOut,
                "GET",
                f"/v1/logs/{log_id}/proof/consistency",
                params={"size1": size, "size2": newest.size},
            )
            verify_consistency(
                size, newest.size, [b64d(h) for h in answer.proof], root, newest.root_hash
            )
            proven[size] = root
        proven[newest.size] = newest.root_hash
        return newest.size
