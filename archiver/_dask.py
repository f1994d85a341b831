"""A Dask distributed cluster as archiver uses it (`--cluster ADDRESS`): connect, run tasks, collect outcomes.

The scheduler is the user's (started by hand, dask-kubernetes, dask-jobqueue...); archiver only
connects as a client. The workers must see the archive root at the same path (a shared filesystem)
and have archiver installed. Dask re-runs a task whose worker died; the commit protocol of
capture/batch.py (and of index parts) makes a task that ran twice leave its outputs once.

`distributed` is imported only inside these functions, when a cluster is used: it is large, and importing
it has no business in a local run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from archiver.errors import ClusterError


def connect(address: str) -> Any:
    """A Dask client for `address`: tcp://host:port (or host:port), or a scheduler file."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a dependency of archiver
        raise ClusterError("--cluster needs the 'distributed' package (pip install distributed)") from exc
    # how long to try: Dask's own setting, distributed.comm.timeouts.connect (30 s unless configured,
    # e.g. DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s)
    try:
        if Path(address).is_file():
            return Client(scheduler_file=address, set_as_default=False)
        return Client(address, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot connect to the Dask scheduler at {address}: {exc}") from exc


def worker_threads(client: Any) -> int:
    """Threads over all the cluster's workers (0 when none has joined yet)."""
    return int(sum(client.nthreads().values()))


def wait_first(client: Any, futures: list[Any], timeout: float) -> list[Any]:
    from distributed import wait

    if not futures:
        return []
    try:
        with client.as_current():  # archiver's client is not made the process's default one
            return list(wait(futures, timeout=timeout, return_when="FIRST_COMPLETED").done)
    except TimeoutError:
        return []


def outcome(future: Any) -> Any:
    if future.status == "finished":
        return future.result()
    if future.status == "cancelled":
        return ClusterError("the task was cancelled by the cluster")
    error = future.exception()
    # KilledWorker: the task's worker died more times than the scheduler allows (allowed-failures)
    return error if isinstance(error, BaseException) else ClusterError(str(error))


def map_tasks(client: Any, fn: Callable[..., Any], items: list[Any], *args: Any,
              key: Callable[[Any], str]) -> Any:
    """Run `fn(item, *args)` for every item on the cluster; yields (item, result or exception) as they end."""
    from distributed import as_completed

    futures = {client.submit(fn, item, *args, key=key(item), pure=False): item for item in items}
    with client.as_current():  # archiver's client is not made the process's default one
        for future in as_completed(futures):
            yield futures[future], outcome(future)
