"""Where the map step runs: in this process, in worker processes on every core, or on a
Dask cluster. The same function runs on the same tasks in each case, so the results are
identical; only the time differs.

A Dask cluster is used when a ``distributed.Client`` is given, when ``scheduler`` names
one (``tcp://host:8786``), or when Dask's own ``DASK_SCHEDULER_ADDRESS`` is set. Its
workers must see the input files and the store folder at the same paths (a shared
filesystem).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, TypeVar

from timeline.errors import TimelineError

T = TypeVar("T")
R = TypeVar("R")

#: Below this many tasks, starting worker processes costs more than it saves.
MIN_TASKS_FOR_WORKERS = 4
#: The number of threads polars starts in a process, read when it is imported.
POLARS_THREADS_ENV = "POLARS_MAX_THREADS"


def default_workers() -> int:
    """Every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def connect(scheduler: str | None = None, client: Any = None) -> Any:
    """A ``distributed.Client`` for ``client``/``scheduler``/``DASK_SCHEDULER_ADDRESS``, or
    None to run on this machine."""
    if client is not None:
        return client
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        return None
    try:
        from distributed import Client
    except ImportError:
        raise TimelineError(
            "a Dask scheduler was given, but Dask is not installed: "
            'pip install "incident-timeline[dask]"'
        ) from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise TimelineError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def run(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int | None = None,
    client: Any = None,
    threads: bool = False,
) -> Iterator[tuple[int, R]]:
    """``fn`` over ``tasks``, yielding ``(index, result)`` as each finishes.

    ``workers``: processes on this machine (default: every core; 1 runs in this process).
    ``client``: a ``distributed.Client``; its workers run the tasks instead.
    ``threads``: the tasks are big polars queries with little Python around them (the
    chunks of big files, the finish of a read): threads of this process run them as well
    as processes would, without starting any. A few tasks always run in threads.
    """
    if client is not None:
        yield from _on_dask(fn, tasks, client)
        return
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            yield i, fn(task)
        return
    if threads or len(tasks) < MIN_TASKS_FOR_WORKERS:
        yield from _on_threads(fn, tasks, workers)
        return
    # spawn, not fork: a forked child of a process that has run polars can deadlock
    context = multiprocessing.get_context("spawn")
    processes = min(workers, len(tasks))
    done: set[int] = set()
    try:
        with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
            with _polars_threads_each(processes):  # the workers start as tasks are given
                futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            for future in as_completed(futures):
                result = future.result()
                done.add(futures[future])
                yield futures[future], result
    except BrokenProcessPool:
        # workers cannot start where the main program cannot be imported again (a script
        # read from standard input, say): the rest runs here
        for i, task in enumerate(tasks):
            if i not in done:
                yield i, fn(task)


@contextmanager
def _polars_threads_each(processes: int) -> Iterator[None]:
    """Give each worker process started meanwhile its share of the cores for polars'
    threads. Processes that each run a thread per core contend for the cores: on two
    cores, a read of the scale-8 set then spends about 0.7 s more CPU time in the
    kernel. A ``POLARS_MAX_THREADS`` the user set stands."""
    if POLARS_THREADS_ENV in os.environ:
        yield
        return
    os.environ[POLARS_THREADS_ENV] = str(max(1, default_workers() // processes))
    try:
        yield
    finally:
        os.environ.pop(POLARS_THREADS_ENV, None)


def _on_threads(fn: Callable[[T], R], tasks: Sequence[T], workers: int) -> Iterator[tuple[int, R]]:
    """``fn`` over a few ``tasks`` in threads of this process: the map's work is polars
    queries, which run without Python's lock, and threads cost nothing to start."""
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _on_dask(fn: Callable[[T], R], tasks: Sequence[T], client: Any) -> Iterator[tuple[int, R]]:
    from distributed import as_completed

    futures = client.map(fn, list(tasks), pure=False)
    index = {future.key: i for i, future in enumerate(futures)}
    for future in as_completed(futures):
        yield index[future.key], future.result()
