"""Where seeds are captured: threads in this process, or worker processes with threads each.

One process reaches about 300 articles/s on a loopback site before Python's GIL is the limit;
worker processes use the other cores. Seeds are sharded by host, so each host
is fetched from one process only and the per-host politeness limits hold across processes;
a new host goes to the process with the fewest hosts, so that a few busy hosts still spread.
Each process writes its own WARC files; results (rows and replay-index lines) come back to the
capture process, which alone writes the indexes.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import queue
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from .children import die_with_parent
from .config import Config
from .fetch import Fetcher
from .layout import Collection
from .netguard import AddressPolicy
from .seeds import Seed
from .seedwork import Captured, Outputs, SeedEnv, capture_seed_safely
from .warc import new_record_id, utc_now


class Engine(Protocol):
    def submit(self, seed: Seed) -> None: ...

    def room(self) -> bool:
        """Can another seed be submitted without queueing too much?"""
        ...

    def pending(self) -> int: ...

    def results(self, timeout: float | None) -> list[Captured]:
        """Results that arrived; waits up to `timeout` for the first one."""
        ...

    def cancel(self) -> None:
        """Drop seeds not started yet (Ctrl-C); in-flight ones finish."""
        ...

    def close(self) -> list[Path]:
        """Wait for in-flight seeds, close the WARC files; return the complete files."""
        ...


class ThreadEngine:
    """Worker threads in this process (also the deterministic path for injected clocks/IDs)."""

    def __init__(self, cfg: Config, collection: Collection, clock: Callable[[], datetime],
                 new_id: Callable[[], str], policy: AddressPolicy | None, run_id: str) -> None:
        self.cfg = cfg
        self.env = SeedEnv(cfg, collection, Fetcher(cfg, clock, policy), clock, new_id, run_id)
        self.outputs = Outputs(self.env)
        self.pool = cf.ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="capture")
        self.futures: set[cf.Future[Captured]] = set()

    def submit(self, seed: Seed) -> None:
        self.futures.add(self.pool.submit(capture_seed_safely, self.env, self.outputs, seed))

    def room(self) -> bool:
        return len(self.futures) < self.cfg.workers * 2

    def pending(self) -> int:
        return len(self.futures)

    def results(self, timeout: float | None) -> list[Captured]:
        if not self.futures:
            return []
        done, self.futures = cf.wait(self.futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return [f.result() for f in done if not f.cancelled()]

    def cancel(self) -> None:
        for future in self.futures:
            future.cancel()

    def close(self) -> list[Path]:
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self.outputs.close_all()
            self.env.fetcher.close()
        return list(self.outputs.finished)


def host_of(url: str) -> str:
    """host:port, the unit of politeness."""
    return urlsplit(url).netloc.rsplit("@", 1)[-1].lower()


class ProcessEngine:
    """`cfg.processes` worker processes, each running `cfg.workers // processes` threads."""

    def __init__(self, cfg: Config, collection: Collection, run_id: str) -> None:
        self.count = cfg.processes
        self.threads = max(1, cfg.workers // self.count)
        context = mp.get_context("spawn")  # never fork a process that has threads
        self.outbox: Any = context.Queue()
        self.inboxes: list[Any] = []
        self.processes = []
        self.in_flight = [0] * self.count
        self.hosts: dict[str, int] = {}  # host -> its process
        self.host_counts = [0] * self.count
        self.finished: list[Path] = []
        self.closed = 0
        worker_cfg = cfg.replace(workers=self.threads)
        for index in range(self.count):
            inbox = context.Queue()
            process = context.Process(
                target=_process_main, name=f"archiver-capture-{index}", daemon=True,
                args=(index, worker_cfg, collection, f"{run_id}{index}", inbox, self.outbox, os.getpid()),
            )
            process.start()
            self.inboxes.append(inbox)
            self.processes.append(process)

    def submit(self, seed: Seed) -> None:
        host = host_of(seed.url)
        index = self.hosts.get(host)
        if index is None:
            index = min(range(self.count), key=lambda i: (self.host_counts[i], self.in_flight[i]))
            self.hosts[host] = index
            self.host_counts[index] += 1
        self.inboxes[index].put(seed)
        self.in_flight[index] += 1

    def room(self) -> bool:
        return sum(self.in_flight) < self.threads * self.count * 2 and max(self.in_flight) < self.threads * 4

    def pending(self) -> int:
        return sum(self.in_flight)

    def results(self, timeout: float | None) -> list[Captured]:
        out: list[Captured] = []
        try:
            self._take(self.outbox.get(timeout=timeout), out)
            while True:
                self._take(self.outbox.get_nowait(), out)
        except queue.Empty:
            pass
        self._check_alive()
        return out

    def _take(self, message: tuple[str, int, Any], out: list[Captured]) -> None:
        kind, index, payload = message
        if kind == "seed":
            self.in_flight[index] -= 1
            out.append(payload)
        elif kind == "dropped":
            self.in_flight[index] -= 1
        elif kind == "closed":
            self.finished.extend(Path(p) for p in payload)
            self.closed += 1

    def _check_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if not process.is_alive() and self.in_flight[index] and process.exitcode not in (0, None):
                raise RuntimeError(f"capture worker process {index} died (exit {process.exitcode}); "
                                   "run the same capture again to resume")

    def cancel(self) -> None:
        for inbox in self.inboxes:
            inbox.put("cancel")

    def close(self) -> list[Path]:
        for inbox in self.inboxes:
            inbox.put(None)
        out: list[Captured] = []
        while self.closed < self.count:
            try:
                self._take(self.outbox.get(timeout=1.0), out)
            except queue.Empty:
                if not any(p.is_alive() for p in self.processes):
                    break  # a killed worker leaves .open files: the next run mends them
        if out:
            raise RuntimeError("results arrived after close")  # pragma: no cover - close() waits for them
        for process in self.processes:
            process.join(10)
        return self.finished


def _process_main(index: int, cfg: Config, collection: Collection, run_id: str, inbox: Any, outbox: Any,
                  parent: int) -> None:
    """A worker process: capture the seeds it is sent with threads; close its files at the end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the capture process decides when to stop
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))  # killed: the next run mends our files
    die_with_parent(parent)  # a killed capture takes its workers along
    engine = ThreadEngine(cfg, collection, utc_now, new_record_id, None, run_id)
    pool_done = engine.pool

    def send(future: cf.Future[Captured]) -> None:
        if not future.cancelled():
            outbox.put(("seed", index, future.result()))

    while True:
        message = inbox.get()
        if message is None:
            break
        if message == "cancel":
            # drop what is queued here; the capture process counts those seeds as not done
            dropped = 0
            while True:
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    inbox.put(None)
                    break
                if isinstance(item, Seed):
                    dropped += 1
            for _ in range(dropped):
                outbox.put(("dropped", index, None))
            continue
        future = pool_done.submit(capture_seed_safely, engine.env, engine.outputs, message)
        future.add_done_callback(send)
    files = engine.close()
    outbox.put(("closed", index, [str(p) for p in files]))
