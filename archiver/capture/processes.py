"""Capture worker processes: batches run in threads of `capture_processes` processes.

This module is light on purpose: `archiver capture` starts the processes before it imports the
capture machinery itself, so that theirs (a fresh interpreter each) and its own imports
overlap instead of following one another. The processes import the batch code when they start.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import multiprocessing as mp
import os
import queue
import signal
from typing import TYPE_CHECKING, Any

from archiver._process import die_with_parent, fewer_malloc_arenas
from archiver.errors import ClusterError

if TYPE_CHECKING:
    from archiver.capture.batch import BatchDone, BatchJob, Outcome
    from archiver.config import Config


def start_processes(cfg: Config) -> ProcessRunner | None:
    """The worker processes a capture with `cfg` runs its batches in, started now; None when it
    runs them elsewhere (one process: threads of the capture process; a Dask cluster)."""
    if cfg.cluster or cfg.capture_processes <= 1:
        return None
    return ProcessRunner(cfg)


class ProcessRunner:
    """`cfg.capture_processes` worker processes, each running batches in threads (`cfg.workers` in all)."""

    def __init__(self, cfg: Config) -> None:
        self.count = cfg.capture_processes
        # seeds at once in each process, and batches in flight there (its pool runs a batch a thread)
        self.budget = max(1, cfg.workers // self.count)
        context = mp.get_context("spawn")  # never fork a process that has threads
        self.outbox: Any = context.Queue()
        self.stopping: Any = context.Event()
        self.inboxes: list[Any] = []
        self.processes: list[Any] = []
        self.used = [0] * self.count
        self.jobs: dict[str, tuple[int, BatchJob]] = {}  # name -> (process, job)
        self.closed = False
        for index in range(self.count):
            inbox = context.Queue()
            process = context.Process(target=_process_main, name=f"archiver-capture-{index}", daemon=True,
                                      args=(inbox, self.outbox, self.stopping, self.budget, os.getpid()))
            process.start()
            self.inboxes.append(inbox)
            self.processes.append(process)

    def has_room(self) -> bool:
        return min(self.used) < self.budget

    def start(self, job: BatchJob) -> None:
        index = min(range(self.count), key=lambda i: self.used[i])
        self.jobs[job.name] = (index, job)
        self.used[index] += 1  # batches in flight there
        self.inboxes[index].put(job)

    def finished(self, timeout: float) -> list[tuple[BatchJob, Outcome]]:
        out: list[tuple[BatchJob, Outcome]] = []
        try:
            self._take(self.outbox.get(timeout=timeout), out)
            while True:
                self._take(self.outbox.get_nowait(), out)
        except queue.Empty:
            pass
        for index, process in enumerate(self.processes):
            if not process.is_alive() and self.used[index]:
                raise ClusterError(f"capture worker process {index} died (exit {process.exitcode}); "
                                   "run the same capture again to resume")
        return out

    def _take(self, message: tuple[str, Outcome], out: list[tuple[BatchJob, Outcome]]) -> None:
        name, outcome = message
        index, job = self.jobs.pop(name)
        self.used[index] -= 1
        out.append((job, outcome))

    def stop(self) -> list[BatchJob]:
        self.stopping.set()
        taken = []
        for index, inbox in enumerate(self.inboxes):
            while True:
                try:
                    job = inbox.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    self.jobs.pop(job.name)
                    self.used[index] -= 1
                    taken.append(job)
        return taken

    def close(self) -> None:
        """Wait for the batches in flight, then let the processes go (a second call does nothing)."""
        if self.closed:
            return
        self.closed = True
        for inbox in self.inboxes:
            inbox.put(None)
        out: list[tuple[BatchJob, Outcome]] = []
        while self.jobs and any(p.is_alive() for p in self.processes):
            with contextlib.suppress(queue.Empty):
                self._take(self.outbox.get(timeout=1.0), out)
        for process in self.processes:
            process.join(10)


def _process_main(inbox: Any, outbox: Any, stopping: Any, threads: int, parent: int) -> None:
    """A worker process: run the batches it is sent, `threads` seeds at a time over all of them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the capture process decides when to stop
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))  # killed: the next run mends our files
    die_with_parent(parent)  # a killed capture takes its workers along
    fewer_malloc_arenas()
    # imported only now: the process is running, and its parent goes on with its own imports
    from archiver.capture.batch import SeedPool, run_batch
    from archiver.fetch.client import Fetcher
    from archiver.warc.record import utc_now

    def send(job: BatchJob, future: cf.Future[BatchDone]) -> None:
        error = future.exception()  # sent as text (not every exception survives pickling), OSError as it is
        if error is not None and not isinstance(error, OSError):
            error = RuntimeError(f"{type(error).__name__}: {error}")
        outcome = error if error is not None else future.result()
        outbox.put((job.name, outcome))

    seeds = SeedPool(threads)
    fetchers: dict[Config, Fetcher] = {}  # the batches of a capture share one (one Config a capture)
    try:
        # a thread a batch in flight, each waiting for its seeds in the shared pool
        with cf.ThreadPoolExecutor(threads, thread_name_prefix="batch") as batches:
            while (job := inbox.get()) is not None:
                fetcher = fetchers.get(job.cfg) or fetchers.setdefault(job.cfg, Fetcher(job.cfg, utc_now))
                future = batches.submit(run_batch, job, stop=stopping, pool=seeds, fetcher=fetcher)
                future.add_done_callback(functools.partial(send, job))
    finally:
        seeds.close()
        for fetcher in fetchers.values():
            fetcher.close()
