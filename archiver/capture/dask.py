"""Capture batches as tasks on a Dask distributed cluster (`--cluster ADDRESS`): the runner the
engine uses there (engine.py). What the commit protocol makes safe is in batch.py."""

from __future__ import annotations

import time
import uuid
from typing import Any

from archiver._dask import outcome, wait_first, worker_threads
from archiver.capture.batch import BatchDone, BatchJob, Outcome, run_batch


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
        done = wait_first(self.client, list(self.futures), timeout)
        out: list[tuple[BatchJob, Outcome]] = []
        for future in done:
            job = self.futures.pop(future)
            out.append((job, outcome(future)))
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
