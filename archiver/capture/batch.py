"""One capture task: a batch of seeds of one shard, captured and committed.

It runs wherever the engine puts it (engine.py): a thread of the capture process, a worker process,
or a Dask worker on another machine that sees the same archive root. The commit protocol makes a
task that runs twice (Dask re-runs a task whose worker died) leave its outputs once:

1. the batch's WARC files are written as `<name>.open`, closed, synced and published (renamed into
   `archive/`, or uploaded whole to an object store: storage.py) under names derived from the
   batch (`<prefix>-<stamp>-<shard>-<key>-000.warc.gz`): a re-run writes the same names;
2. then its metadata fragment (index/fragments.py) is published whole: the commit;
3. the capture process merges committed fragments into the collection's indexes and removes files
   of the batch that its fragment does not name (left by an attempt that died).
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from archiver.capture.outputs import Outputs, SeedEnv
from archiver.capture.recheck import Recheck
from archiver.capture.requisites import Requisite, RequisiteDone, capture_requisite_safely
from archiver.capture.seed import capture_seed_safely
from archiver.capture.shards import Batch
from archiver.collection import OPEN_SUFFIX, Collection
from archiver.config import Config
from archiver.fetch.client import Fetcher
from archiver.fetch.netguard import AddressPolicy
from archiver.index.fragments import Entry, orphans, write_fragment
from archiver.index.links import Previous
from archiver.seeds.model import Seed
from archiver.storage import collection_storage
from archiver.warc.record import new_record_id, utc_now

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class BatchJob:
    """Everything a task needs, picklable (it travels to worker processes and Dask workers)."""

    cfg: Config
    collection: Collection
    batch: Batch
    stamp: str  # the 14-digit time the batch was formed: in its names, the same when it is run again
    # the last payloads of the batch's seeds and lead images fetched before: the same again is a revisit
    known: Mapping[str, Previous] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The fragment's name; the batch's WARC files are `<warc_prefix>-<name>-NNN.warc.gz`."""
        return f"{self.stamp}-{self.batch.name}"

    @property
    def warc_base(self) -> str:
        return f"{self.cfg.warc_prefix}-{self.name}"

    @property
    def threads(self) -> int:
        """Threads worth giving the batch: no more than its hosts' politeness allows (more would only
        wait at the gate). Those fetching at once across batches are bounded by the process's pool."""
        batch, cfg = self.batch, self.cfg
        return max(1, min(cfg.workers, len(batch.items), cfg.host_concurrency * batch.hosts))


# How often a batch asks whether to stop: on a cluster, each question is a round trip to the
# scheduler (asked before every seed, they took 18% of a worker's event loop in the bench).
STOP_CHECK_SECONDS = 1.0


class _Every:
    """`event.is_set()`, asked at most once every `seconds` (and answered from the last ask between)."""

    def __init__(self, event: Any, seconds: float) -> None:
        self.event = event
        self.seconds = seconds
        self.lock = threading.Lock()
        self.asked = -seconds
        self.answer = False

    def __call__(self) -> bool:
        with self.lock:
            now = time.monotonic()
            if not self.answer and now - self.asked >= self.seconds:
                self.answer, self.asked = bool(self.event.is_set()), now
            return self.answer


@dataclass(frozen=True)
class BatchDone:
    name: str
    fragment: str  # its name in the collection's storage
    seeds: int
    requisites: tuple[RequisiteDone, ...]
    # what the fragment holds, handed back with it: the capture process need not read it back
    # (nor load pyarrow, tens of MB, to do so)
    files: tuple[str, ...]
    entries: tuple[Entry, ...]


Outcome = BatchDone | BaseException  # what a runner hands back for a batch: done, or why not


class SeedPool:
    """`count` threads capturing the seeds of the batches that share it (a process's `workers`).

    One pool for all of a process's batches rather than threads of their own waiting for a free
    slot: a batch near its end leaves its threads to the others at once, and a process runs
    `count` capture threads instead of up to `count` a batch (4 batches of 48 threads on 48
    slots in the capture benchmark), whose wake-ups competed for the GIL. Each batch keeps at
    most `job.threads` of its seeds in the pool (`run_batch`), so its hosts take no more threads
    than their politeness lets work; the pool runs the seeds it is given in order."""

    def __init__(self, count: int) -> None:
        self.executor = cf.ThreadPoolExecutor(count, thread_name_prefix="seed")

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def run_batch(job: BatchJob, clock: Callable[[], datetime] = utc_now, new_id: Callable[[], str] = new_record_id,
              policy: AddressPolicy | None = None, stop: Any = None, pool: SeedPool | None = None,
              fetcher: Fetcher | None = None) -> BatchDone:
    """Capture the batch and commit it.

    `stop`: an Event; once set, seeds not started yet are left out (Ctrl-C), and the batch commits
    what it did: the seeds left out are not in its fragment, and the next run captures them.
    `pool`: the threads the batches of a process share (its `workers`); without one the batch
    starts threads of its own (`job.threads`).
    `fetcher`: shared by the batches of a process (its libcurl handles, kept connections and host
    limits); without one the batch makes its own.
    `clock`, `new_id` and `policy` are for tests (in-process only).
    """
    collection, cfg = job.collection, job.cfg
    storage = collection_storage(cfg, collection)
    spool = storage.staging_path(f"archive/{job.warc_base}").parent
    for leftover in spool.glob(f"{job.warc_base}-*{OPEN_SUFFIX}"):
        leftover.unlink(missing_ok=True)  # an earlier attempt of this task that died: started again
    own = fetcher is None
    fetcher = Fetcher(cfg, clock, policy) if fetcher is None else fetcher
    env = SeedEnv(cfg, collection, fetcher, clock, new_id)
    outputs = Outputs(env, job.warc_base, spool)

    stopped = _Every(stop, STOP_CHECK_SECONDS) if stop is not None else (lambda: False)

    def one(item: Seed | Requisite | Recheck) -> Entry | RequisiteDone | None:
        if stopped():
            return None
        if isinstance(item, Requisite):
            return capture_requisite_safely(env, outputs, item)
        if isinstance(item, Recheck):
            return capture_seed_safely(env, outputs, item.seed, job.known, item.previous)
        return capture_seed_safely(env, outputs, item, job.known)

    try:
        if pool is None:
            with cf.ThreadPoolExecutor(job.threads, thread_name_prefix=f"batch-{job.batch.shard}") as threads:
                found = list(threads.map(one, job.batch.items))
        else:
            found = bounded_map(pool.executor, one, job.batch.items, job.threads)
        entries = [entry for entry in found if isinstance(entry, Entry)]
        requisites = tuple(done for done in found if isinstance(done, RequisiteDone))
    finally:
        files = outputs.close()
        if own:
            fetcher.close()
    for path in files:
        storage.publish(path, f"archive/{path.name}")
    names = [p.name for p in files]
    fragment = write_fragment(storage, job.name, names, entries)
    return BatchDone(job.name, fragment, len(entries), requisites, tuple(names), tuple(entries))


def bounded_map(executor: cf.Executor, func: Callable[[T], R], items: list[T], limit: int) -> list[R]:
    """`func` over `items` on a shared executor, at most `limit` of them queued or running at once;
    the results in the items' order. If one raises, no more start, and it is raised once the
    others have ended (a batch's seeds write into its files, which close after)."""
    results: dict[int, R] = {}
    waiting = iter(range(len(items)))
    running = {executor.submit(func, items[i]): i for i in itertools.islice(waiting, max(1, limit))}
    failure: BaseException | None = None
    while running:
        done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
        for future in done:
            index = running.pop(future)
            if (error := future.exception()) is not None:
                failure = failure or error
            else:
                results[index] = future.result()
            if failure is None and (following := next(waiting, None)) is not None:
                running[executor.submit(func, items[following])] = following
    if failure is not None:
        raise failure
    return [results[i] for i in range(len(items))]


def collect(job: BatchJob, done: BatchDone) -> tuple[list[Entry], list[tuple[str, int]]]:
    """A committed batch's entries and files (name, size), as its task handed them back with the
    commit; files of the batch its fragment does not name are removed."""
    storage = collection_storage(job.cfg, job.collection)
    listed = [n.removeprefix("archive/") for n in storage.list(f"archive/{job.warc_base}-")]
    for name in orphans(storage, listed, known={done.fragment: set(done.files)}):
        storage.remove(f"archive/{name}")  # written by an attempt that died; the commit replaced it
    return list(done.entries), [(name, storage.size(f"archive/{name}")) for name in done.files]
