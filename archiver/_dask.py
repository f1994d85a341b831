"""Running capture batches and index tasks on a Dask distributed cluster (`--cluster ADDRESS`).

The scheduler is the user's (started by hand, dask-kubernetes, dask-jobqueue...); archiver only
connects as a client. The workers must see the archive root at the same path (a shared filesystem)
and have archiver installed. Dask re-runs a task whose worker died; the commit protocol of
batches.py (and of index parts) makes a task that ran twice leave its outputs once.

`distributed` is imported only here and only when a cluster is used: it is large, and importing
it has no business in a local run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archiver.capture.batch import BatchDone, BatchJob, Outcome, run_batch
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


class DaskRunner:
    """Capture batches as Dask tasks; at most two per worker thread in flight."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.futures: dict[Any, BatchJob] = {}
        # Ctrl-C reaches the tasks through a Dask Event, known to them by name: they skip the seeds
        # they have not started
        self.stop_event = f"archiver-stop-{uuid.uuid4().hex}"
        self._slots = 0
        self._checked = 0.0

    def slots(self) -> int:
        if time.monotonic() - self._checked > 5:  # workers come and go; ask now and then
            self._slots = 2 * worker_threads(self.client)
            self._checked = time.monotonic()
        return max(self._slots, 1)

    def has_room(self) -> bool:
        return len(self.futures) < self.slots()

    def start(self, job: BatchJob) -> None:
        # the key names the batch: a task resubmitted for the same batch is the same task
        future = self.client.submit(_run_batch_task, job, self.stop_event, key=f"archiver-capture-{job.name}",
                                    pure=False, retries=0)
        self.futures[future] = job

    def finished(self, timeout: float) -> list[tuple[BatchJob, Outcome]]:
        done = _wait_first(self.client, list(self.futures), timeout)
        out: list[tuple[BatchJob, Outcome]] = []
        for future in done:
            job = self.futures.pop(future)
            out.append((job, _outcome(future)))
        return out

    def stop(self) -> list[BatchJob]:
        from distributed import Event

        Event(self.stop_event, client=self.client).set()
        return []  # tasks on a cluster may have started anywhere: they commit what they did

    def close(self) -> None:
        self.client.close()


def _run_batch_task(job: BatchJob, stop_name: str) -> BatchDone:
    """The Dask task: run_batch, with the stop flag bound to this worker's client (the batch's own
    threads, which ask it, are no Dask threads and could not find the client themselves)."""
    from distributed import Event, get_client

    return run_batch(job, stop=Event(stop_name, client=get_client()))


def _wait_first(client: Any, futures: list[Any], timeout: float) -> list[Any]:
    from distributed import wait

    if not futures:
        return []
    try:
        with client.as_current():  # archiver's client is not made the process's default one
            return list(wait(futures, timeout=timeout, return_when="FIRST_COMPLETED").done)
    except TimeoutError:
        return []


def _outcome(future: Any) -> Any:
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
            yield futures[future], _outcome(future)
