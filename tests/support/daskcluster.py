"""A real Dask cluster on 127.0.0.1 for tests: `dask scheduler` and `dask worker` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


@contextmanager
def dask_cluster(folder: Path, workers: int = 2, threads: int = 2, env: dict[str, str] | None = None) -> Iterator[Path]:
    """Start a scheduler and `workers` worker processes (each under a nanny, which restarts a
    worker that dies), with `env` added to their environment; yields the scheduler file; stops them all."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "3", **(env or {})}
    log = (folder / "cluster.log").open("ab")
    processes = [subprocess.Popen(
        [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         # without it, the HTTP server that --no-dashboard keeps (/health, /metrics) listens on every interface
         "--dashboard-address", "127.0.0.1:0", "--scheduler-file", scheduler_file],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert time.monotonic() < deadline, (folder / "cluster.log").read_text()
            assert processes[0].poll() is None, (folder / "cluster.log").read_text()
            time.sleep(0.1)
        for _ in range(workers):
            processes.append(subprocess.Popen(
                [BIN / "dask", "worker", "--scheduler-file", scheduler_file, "--host", "127.0.0.1",
                 "--nthreads", str(threads), "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                 "--nanny-port", "0", "--local-directory", str(folder / "workers"), "--memory-limit", "2GiB"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True))
        wait_for_workers(scheduler_file, workers)
        yield scheduler_file
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()


def scheduler_address(scheduler_file: Path) -> str:
    return str(json.loads(scheduler_file.read_text())["address"])


def wait_for_workers(scheduler_file: Path, count: int, timeout: float = 60) -> None:
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout=30) as client:
        client.wait_for_workers(count, timeout=timeout)
