"""The process pool that checks a large log's signatures in parallel.

`make_pool` starts the workers before the first chunk arrives; `worker_count`
and `can_fork_now` say how many there will be and how they start.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext

PARALLEL_THRESHOLD = 2000
"""Logs with more entries than this have their signatures checked in a process pool."""
CHUNK_SIZE = 256


def _warm_up() -> None:
    """Runs once in each worker, so each starts before the first chunk arrives."""


def make_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """A process pool for `check_chunk`, its workers started now.

    A process that runs no other thread forks its workers: instantly, and
    they inherit everything imported. Forking beside other threads (an event
    loop's resolver, database drivers) is unsafe, so then a fork server starts
    clean, imports the checks once and forks each worker from that.
    """
    count = worker_count(workers)
    context: BaseContext
    forking = can_fork_now()
    if forking:
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver")
        # With __main__ preloaded the fork server imports it once; workers then skip it.
        context.set_forkserver_preload(["__main__", "client_sdk.audit.checks"])
    pool = ProcessPoolExecutor(max_workers=count, mp_context=context, initializer=_warm_up)
    if forking:
        gc.freeze()  # so the workers' collections leave the heap they inherit shared
    try:
        for _ in range(count):
            pool.submit(_warm_up)  # a fork context starts every worker on the first submit
    finally:
        if forking:
            gc.unfreeze()
    return pool


def worker_count(workers: int | None) -> int:
    """How many worker processes to run: as asked, else one per core (at most 8)."""
    return workers or max(1, min(os.cpu_count() or 1, 8))


def can_fork_now() -> bool:
    """Whether `make_pool` would fork (this process runs no other thread)."""
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
