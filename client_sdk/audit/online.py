"""What an online audit and an export fetch: the log's identity and checkpoints, its
entries page by page, and the directory records of the roster signers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import IO, Any

from client_sdk.audit.archive import TiledManifest, TiledWriter, signed_bytes_of
from client_sdk.audit.bundle import AuditBundle
from client_sdk.audit.checkpoints import KnownCheckpoint
from client_sdk.audit.core import AuditReport, AuditRun, Policy, ProgressSink, bisect
from client_sdk.audit.log import LogAuditor
from client_sdk.audit.outcome import AuditOutcome, LogKind, log_kind
from client_sdk.audit.pool import can_fork_now, make_pool, worker_count
from client_sdk.audit.witness import WITNESS_STATE_FILENAME, read_witness_state
from client_sdk.audit.witness_online import existing_witness, fetch_checkpoint
from client_sdk.client import ParleyClient
from client_sdk.protocol.encoding import b64d
from client_sdk.protocol.wire.identity import AccountOut
from client_sdk.protocol.wire.logs import EntriesOut, LogOut, WitnessOut

PAGE = 1000
"""Entries per request (the server's maximum)."""
FIRST_PAGE = 250
AHEAD = 2
"""Pages requested ahead of the one being checked."""
BUNDLE_CHECKPOINTS = 64
"""About how many evenly spaced checkpoints a bundle carries to locate a changed leaf."""


class OnlineLog:
    """One log read through a client of a member or a granted auditor."""

    def __init__(self, client: ParleyClient, log_id: str) -> None:
        """Read `log_id` as `client`'s account."""
        self.client = client
        self.http = client.http
        self.log_id = log_id

    async def _prepare(self, policy: Policy) -> tuple[AuditRun, list[KnownCheckpoint]]:
        """The pinned identity, the checkpoints to check, and what was seen before."""
        identity = await self.client.logs.identity(self.log_id)
        info = await self.http.call(LogOut, "GET", f"/v1/logs/{self.log_id}")
        run = AuditRun(
            self.log_id, identity.origin, identity.key.to_text(), await self.witnesses(), policy
        )
        run.add(await fetch_checkpoint(self.client, self.log_id))
        cosigned = info.cosigned_size
        known = self._known(identity.origin)
        run.check_rollback(known)
        sizes = {s.size for s in known}
        if cosigned is not None and cosigned <= run.newest.size:
            sizes.add(cosigned)
        for size in sorted(sizes - run.checkpoints.keys()):
            if size:
                run.add(await fetch_checkpoint(self.client, self.log_id, size), size=size)
        return run, known

    async def witnesses(self) -> list[str]:
        """The witness keys the server knows, and this profile's own."""
        listed = await self.http.call_list(WitnessOut, "GET", "/v1/witnesses")
        keys = [w.vkey for w in listed]
        own = existing_witness(self.client.keystore)
        return keys if own is None else [*keys, own.vkey]

    def _known(self, origin: str) -> list[KnownCheckpoint]:
        keystore = self.client.keystore
        known = []
        stored = keystore.checkpoint(self.log_id)
        if stored is not None:
            known.append(
                KnownCheckpoint(
                    "the checkpoint this keystore verified before", stored.size, stored.root
                )
            )
        witnessed = read_witness_state(keystore.home / WITNESS_STATE_FILENAME).get(origin)
        if witnessed is not None and witnessed.root is not None:
            known.append(
                KnownCheckpoint(
                    "the checkpoint this profile's witness cosigned", witnessed.size, witnessed.root
                )
            )
        return known

    async def verify(
        self,
        *,
        policy: Policy,
        workers: int | None,
        threshold: int,
        progress: ProgressSink | None,
    ) -> AuditReport:
        """Audit the log; on success keep its newest checkpoint as verified."""
        # Workers fork fastest before the first request starts a resolver thread.
        early = make_pool(workers) if can_fork_now() and worker_count(workers) > 1 else None
        try:
            run, known = await self._prepare(policy)
        except BaseException:
            if early is not None:
                early.shutdown(wait=False, cancel_futures=True)
            raise
        auditor = run.entries(workers=workers, threshold=threshold, progress=progress, pool=early)
        try:
            await self._feed(auditor, run.newest.size)
            outcome = await asyncio.to_thread(auditor.finish)
        finally:
            auditor.close()
        outcome = run.signer_failure(
            outcome, await self._signer_accounts(outcome), now=self.client.clock()
        )
        located = run.mismatch(outcome.tree)
        if located is not None:
            located = await bisect(run, outcome.tree, located, self._probe)
        report = run.conclude(outcome, located=located, known=known)
        keystore, newest = self.client.keystore, run.newest
        keystore.set_checkpoint(self.log_id, newest.size, newest.root, newest.note)
        return report

    async def _probe(self, size: int) -> str:
        return await fetch_checkpoint(self.client, self.log_id, size)

    async def _page(self, start: int, end: int) -> list[Any]:
        answer = await self.http.call(
            EntriesOut,
            "GET",
            f"/v1/logs/{self.log_id}/entries",
            params={"start": start, "end": end},
        )
        return [e.model_dump(mode="json") for e in answer.entries[: end - start]]

    async def _feed(self, auditor: LogAuditor, size: int) -> None:
        """Feed entries [0, size) in order, with the next pages already being fetched.

        The first page is small, so the workers start early; the server's time
        per page then overlaps the checks of the one before.
        """
        ranges = _pages(size)
        ahead: deque[asyncio.Task[list[Any]]] = deque()
        try:
            for number, (start, end) in enumerate(ranges):
                while len(ahead) < AHEAD and number + len(ahead) < len(ranges):
                    following = ranges[number + len(ahead)]
                    ahead.append(asyncio.create_task(self._page(*following)))
                page = await ahead.popleft()
                auditor.feed(page)
                if len(page) < end - start and not auditor.failed:
                    auditor.fail(
                        start + len(page),
                        f"the server serves no entry {start + len(page)}, though the "
                        f"checkpoint has size {size}",
                    )
                if auditor.failed:
                    return
        finally:
            for task in ahead:
                task.cancel()
            await asyncio.gather(*ahead, return_exceptions=True)

    async def _account(self, account_id: str) -> dict[str, Any]:
        record = await self.http.call(AccountOut, "GET", f"/v1/accounts/{account_id}")
        # Its log proof is not needed to check signatures.
        return record.model_dump(mode="json", exclude={"directory"})

    async def _signer_accounts(self, outcome: AuditOutcome) -> dict[str, Any]:
        ids = sorted({signer.account_id for signer in outcome.roster_signers})
        return {account_id: await self._account(account_id) for account_id in ids}

    async def _export_run(self) -> AuditRun:
        """The checkpoints a bundle carries: the newest, the cosigned, the known ones, and
        a grid of evenly spaced ones so that a changed leaf is located offline."""
        run, _ = await self._prepare(Policy((), None))
        size = run.newest.size
        step = 256
        while size // step > BUNDLE_CHECKPOINTS:
            step *= 2
        for grid in range(step, size, step):
            if grid not in run.checkpoints:
                run.add(await self._probe(grid), size=grid)
        return run

    async def _entries(self, size: int) -> AsyncIterator[dict[str, Any]]:
        for start in range(0, size, PAGE):
            for entry in await self._page(start, min(start + PAGE, size)):
                if isinstance(entry, dict):
                    yield {k: entry.get(k) for k in ("index", "leaf", "signed")}

    async def export(self) -> AuditBundle:
        """The log, its checkpoints and the keys needed to check them, as a JSON bundle."""
        run = await self._export_run()
        entries = [entry async for entry in self._entries(run.newest.size)]
        mediators: set[str] = set()
        for entry in entries:
            mediators |= self._mediators(entry)
        return AuditBundle(
            log_id=self.log_id,
            origin=run.origin,
            log_vkey=run.log_vkey,
            exported_at=self.client.clock(),
            checkpoints=[c.note for _, c in sorted(run.checkpoints.items())],
            witnesses=await self.witnesses(),
            accounts={a: await self._account(a) for a in sorted(mediators)},
            entries=entries,
        )

    async def export_tiled(self, out: IO[bytes]) -> int:
        """Write the tiled bundle of the log to `out`, page by page; the entry count."""
        run = await self._export_run()
        newest = run.newest
        manifest = TiledManifest(
            log_id=self.log_id,
            origin=run.origin,
            log_vkey=run.log_vkey,
            exported_at=self.client.clock(),
            size=newest.size,
            checkpoints=[c.note for size, c in sorted(run.checkpoints.items()) if c is not newest],
            witnesses=await self.witnesses(),
        )
        writer = TiledWriter(out, manifest, newest.note)
        mediators: set[str] = set()
        async for entry in self._entries(newest.size):
            mediators |= self._mediators(entry)
            writer.add(b64d(str(entry.get("leaf"))), signed_bytes_of(entry.get("signed")))
        writer.finish({a: await self._account(a) for a in sorted(mediators)})
        return writer.written

    def _mediators(self, entry: dict[str, Any]) -> set[str]:
        """The mediators a roster entry lists (whose directory records a bundle carries)."""
        if log_kind(self.log_id) is not LogKind.ROOM:
            return set()
        body = (entry.get("signed") or {}).get("body")
        return {
            str(member.get("account_id"))
            for member in (body or {}).get("members") or []
            if isinstance(member, dict) and member.get("side") == "mediator"
        }


def _pages(size: int) -> list[tuple[int, int]]:
    """The [start, end) ranges to fetch entries [0, size) in: a short first page, then full."""
    ranges = [(0, min(FIRST_PAGE, size))] if size else []
    for start in range(FIRST_PAGE, size, PAGE):
        ranges.append((start, min(start + PAGE, size)))
    return ranges
