"""Where capture batches run: threads of this process, worker processes, or a Dask cluster.

Every capture goes through the same partition-and-commit path: seeds are cut into batches by shard
(shards.py), each batch is a task (batch.py) that commits its WARC files and metadata fragment,
and this module hands the committed entries back to the capture process, which alone writes the
collection's indexes. Only the runner differs:

* `ThreadRunner`: batches in threads of this process (also the path for injected clocks and IDs);
* `processes.ProcessRunner`: worker processes running batches in threads (one process is limited
  to about one core by Python's GIL);
* `dask.DaskRunner`: tasks on a Dask distributed cluster (`--cluster`).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from archiver.capture.batch import BatchDone, BatchJob, Outcome, SeedPool, collect, run_batch
from archiver.capture.recheck import Recheck
from archiver.capture.requisites import Requisite, RequisiteDone
from archiver.capture.seed import failed_entry
from archiver.capture.shards import Batcher, Work
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import DiskError, is_disk_error
from archiver.fetch.client import Fetcher
from archiver.fetch.netguard import AddressPolicy
from archiver.index.fragments import Entry
from archiver.index.links import Previous
from archiver.warc.record import new_record_id, timestamp14, utc_now


class Runner(Protocol):
    def has_room(self) -> bool:
        """Would another batch start now (rather than queue)?"""
        ...

    def start(self, job: BatchJob) -> None: ...

    def finished(self, timeout: float) -> list[tuple[BatchJob, Outcome]]:
        """Batches that ended; waits up to `timeout` for the first one."""
        ...

    def stop(self) -> list[BatchJob]:
        """Ctrl-C: batches in flight skip their seeds not started yet and commit the others;
        returns the batches that have not started at all (taken back)."""
        ...

    def close(self) -> None:
        """Wait for the batches still running, then let the workers go."""
        ...


class BatchEngine:
    """Seeds and requisites in (`submit`), what became of them out (`results`), once their batch committed."""

    def __init__(self, cfg: Config, collection: Collection, runner: Runner,
                 clock: Callable[[], datetime] = utc_now,
                 known: Callable[[list[Work]], Mapping[str, Previous]] = lambda items: {}) -> None:
        self.cfg = cfg
        self.known = known  # the last payloads of a batch's URLs, asked for as it leaves
        self.collection = collection
        self.runner = runner
        self.clock = clock
        self.batcher = Batcher(cfg.shards, cfg.batch_size, cfg.batch_wait)
        self.busy: dict[int, BatchJob] = {}  # shard -> its batch in flight
        self.buffer_limit = cfg.batch_size * 4
        self.ended = False
        self.files: list[tuple[str, int]] = []  # (name, size) of the complete WARC files collected

    def submit(self, item: Work) -> None:
        self.batcher.add(item)
        self._dispatch()

    def room(self) -> bool:
        """Can another seed be submitted without holding too many in memory?"""
        self._dispatch()
        return self.batcher.buffered < self.buffer_limit

    def end_of_input(self) -> None:
        self.ended = True
        self._dispatch()

    def pending(self) -> int:
        return self.batcher.buffered + sum(len(job.batch.items) for job in self.busy.values())

    def _dispatch(self) -> None:
        while self.runner.has_room():
            crowded = self.batcher.buffered >= self.buffer_limit
            batches = self.batcher.take(set(self.busy), self.ended, limit=1, crowded=crowded)
            if not batches:
                return
            batch = batches[0]
            job = BatchJob(self.cfg, self.collection, batch, timestamp14(self.clock()), self.known(batch.items))
            self.busy[job.batch.shard] = job
            self.runner.start(job)

    def results(self, timeout: float) -> list[Entry | RequisiteDone]:
        """What became of the items of the batches committed since the last call; waits up to `timeout`."""
        self._dispatch()
        if not self.busy:
            if self.batcher.buffered:
                time.sleep(min(timeout, 0.05))  # a batch still filling up, or waiting its turn
                self._dispatch()
            return []
        out: list[Entry | RequisiteDone] = []
        for job, outcome in self.runner.finished(timeout):
            del self.busy[job.batch.shard]
            if isinstance(outcome, BaseException):
                if is_disk_error(outcome):
                    raise DiskError(f"writing the WARC files of batch {job.name}", outcome)
                detail = f"{type(outcome).__name__}: {outcome}"
                out.extend(RequisiteDone(item, None, detail=detail) if isinstance(item, Requisite)
                           else failed_entry(item.seed if isinstance(item, Recheck) else item, "batch_failed", detail)
                           for item in job.batch.items)
                continue
            entries, files = collect(job, outcome)
            out.extend(entries)
            out.extend(outcome.requisites)
            self.files.extend(files)
        self._dispatch()
        return out

    def cancel(self) -> None:
        """Drop the seeds not started (Ctrl-C); batches in flight finish."""
        self.batcher.drop()
        for job in self.runner.stop():
            del self.busy[job.batch.shard]

    def close(self) -> list[tuple[str, int]]:
        """Wait for what is in flight; return the complete files of the batches collected."""
        self.runner.close()
        return self.files


class ThreadRunner:
    """Batches in threads of this process; `cfg.workers` seeds at once over all of them."""

    def __init__(self, cfg: Config, clock: Callable[[], datetime] = utc_now,
                 new_id: Callable[[], str] = new_record_id, policy: AddressPolicy | None = None) -> None:
        self.limit = cfg.workers  # batches in flight (one per shard; they share the seed pool)
        self.stopping = threading.Event()
        self.fetcher = Fetcher(cfg, clock, policy)  # shared by the batches (handles, connections, host limits)
        self.seeds = SeedPool(cfg.workers)
        self.args = (clock, new_id, policy, self.stopping, self.seeds, self.fetcher)
        self.pool = cf.ThreadPoolExecutor(cfg.workers, thread_name_prefix="batch")
        self.futures: dict[cf.Future[BatchDone], BatchJob] = {}

    def has_room(self) -> bool:
        return len(self.futures) < self.limit

    def start(self, job: BatchJob) -> None:
        self.futures[self.pool.submit(run_batch, job, *self.args)] = job

    def finished(self, timeout: float) -> list[tuple[BatchJob, Outcome]]:
        done, _ = cf.wait(self.futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out: list[tuple[BatchJob, Outcome]] = []
        for future in done:
            out.append((self.futures.pop(future), future.exception() or future.result()))
        return out

    def stop(self) -> list[BatchJob]:
        self.stopping.set()
        taken = [job for future, job in self.futures.items() if future.cancel()]
        for future in [f for f in self.futures if f.cancelled()]:
            del self.futures[future]
        return taken

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.seeds.close()
        self.fetcher.close()
