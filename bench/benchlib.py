"""Shared pieces of the benchmarks: paths, setup, timed runs, the loopback site, statistics."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / ".data"
RUNS = DATA / "runs"
LOGS = DATA / "logs"
PY = sys.executable
BIN = Path(PY).parent
ARCHIVER = str(BIN / "archiver")
TIME = "/usr/bin/time"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- setup --------------------------------------------------------------------------------

def ensure_tools() -> None:
    """wget and GNU time from Debian (apt-get), Python packages from bench/requirements.txt (pip)."""
    missing = [pkg for pkg, path in (("wget", shutil.which("wget")), ("time", TIME if Path(TIME).exists() else None))
               if path is None]
    if missing:
        log(f"installing {' '.join(missing)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    subprocess.run([PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                    str(BENCH / "requirements.txt")], check=True)


def machine() -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "archiver"], capture_output=True,
                           text=True).stdout.strip()
    mem_kb = 0
    with contextlib.suppress(OSError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": model or platform.processor() or "unknown",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
        "archiver": f"{commit}{' + uncommitted changes in archiver/' if dirty else ''}",
        "load": loadavg(),
    }


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# --- timed runs ---------------------------------------------------------------------------

@dataclass
class Run:
    """One measured process: wall time (ours), CPU and peak RSS (GNU time -v)."""

    cmd: list[str]
    rc: int
    wall: float
    user: float = 0.0
    sys: float = 0.0
    maxrss_kb: int = 0
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    extra: dict[str, float] = field(default_factory=dict)
    tree_pss_kb: int = 0  # sampled peak of the PSS summed over the command and its descendants
    tree_samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds, kB) of that sum

    @property
    def cpu_pct(self) -> float:
        return 100.0 * (self.user + self.sys) / self.wall if self.wall else 0.0

    @property
    def rss_mb(self) -> float:
        """Peak memory: GNU time's peak RSS of the largest process, or the sampled peak PSS of all
        the command's processes together when that is more (worker processes: each has its own
        RSS, and GNU time reports only the largest; PSS shares the pages they have in common)."""
        return max(self.maxrss_kb, self.tree_pss_kb) / 1024


def _parse_time(text: str) -> tuple[float, float, int]:
    def grab(label: str) -> str:
        m = re.search(rf"{re.escape(label)}:\s*([\d.]+)", text)
        return m.group(1) if m else "0"

    return float(grab("User time (seconds)")), float(grab("System time (seconds)")), int(
        grab("Maximum resident set size (kbytes)"))


def run_timed(cmd: Sequence[str], name: str, cwd: Path | None = None, timeout: float = 1800,
              env: dict[str, str] | None = None, stdin_path: Path | None = None) -> Run:
    """Run `cmd` under GNU time -v; stdout/stderr go to bench/.data/logs/<name>.*; killed after `timeout`."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out_path, err_path, time_path = (LOGS / f"{name}.{ext}" for ext in ("out", "err", "time"))
    full = [TIME, "-v", "-o", str(time_path), *cmd]
    with out_path.open("wb") as out, err_path.open("wb") as err, (
            stdin_path.open("rb") if stdin_path else open(os.devnull, "rb")) as inp:
        started = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, stdout=out, stderr=err, stdin=inp, env=env, start_new_session=True)
        timed_out = False
        sampler = TreeMemory(proc.pid)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            log(f"{name}: time limit of {timeout:.0f} s reached, stopping it")
            for child in children(proc.pid):  # the tool itself: it stops cleanly, and GNU time reports
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGTERM)
            try:
                rc = proc.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the group we started: time and its child
                rc = proc.wait()
        wall = time.perf_counter() - started
        tree_pss = sampler.stop()
    user = system = 0.0
    rss = 0
    with contextlib.suppress(OSError):
        user, system, rss = _parse_time(time_path.read_text())
    return Run(list(cmd), rc, wall, user, system, rss, out_path.read_text(errors="replace"),
               err_path.read_text(errors="replace"), timed_out, tree_pss_kb=tree_pss, tree_samples=sampler.samples)


class TreeMemory:
    """Samples the PSS summed over a process's descendants (GNU time and the tool below it) every
    `every` seconds, in a thread, until stop(); bounded by the process's own life."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        import threading

        self.pid = pid
        self.every = every
        self.peak = 0
        self.samples: list[tuple[float, int]] = []  # (seconds since start, kB)
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            total = sum(proc_pss_kb(pid) for pid in tree(self.pid)[1:])
            self.samples.append((time.perf_counter() - self._started, total))
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def proc_pss_kb(pid: int) -> int:
    """Proportional set size of a live process (its own pages, plus its share of shared ones)."""
    return _proc_kb(pid, "smaps_rollup", "Pss")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kb(pid: int, field: str) -> int:
    """A kB figure of a live process from /proc/PID/status: VmRSS (resident now), VmHWM (peak)."""
    return _proc_kb(pid, "status", field)


def _proc_kb(pid: int, file: str, field: str) -> int:
    """The kB figure `field` of /proc/PID/<file> (0 once the process is gone)."""
    with contextlib.suppress(OSError):
        m = re.search(rf"^{field}:\s+(\d+)", Path(f"/proc/{pid}/{file}").read_text(), re.MULTILINE)
        if m:
            return int(m.group(1))
    return 0


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def tree(pid: int) -> list[int]:
    found = [pid]
    for child in children(pid):
        found += tree(child)
    return found


# --- the loopback site --------------------------------------------------------------------

class Site:
    """bench/site.py in a process of its own, on `ports` ports of 127.0.0.1."""

    def __init__(self, ports: int = 8, latency: float = 0.05, max_seconds: float = 3600, prebuild: int = 0) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self._err = (LOGS / "site.err").open("ab")
        self.proc = subprocess.Popen(
            [PY, str(BENCH / "site.py"), "--ports", str(ports), "--latency", str(latency),
             "--max-seconds", str(max_seconds), "--prebuild", str(prebuild)],
            stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"site did not start (see {LOGS / 'site.err'})")
        self.ports = [int(p) for p in line.split()[1].split(",")]

    def url(self, i: int, kind: str = "news") -> str:
        port = self.ports[i % len(self.ports)]
        if kind == "img":
            return f"http://127.0.0.1:{port}/img/{i}.jpg"
        return f"http://127.0.0.1:{port}/{kind}/{i}.html"

    def cpu(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()

    def __enter__(self) -> Site:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- a Dask cluster on 127.0.0.1 ----------------------------------------------------------

class DaskCluster:
    """`dask scheduler` and `workers` x `dask worker --nthreads threads` processes on 127.0.0.1.

    Each process is started in a session of its own, so that stop() can end it with its children
    (a worker runs under a nanny, which spawns the worker process) and nothing else. The workers
    inherit os.environ, so PYTHONPATH makes them import the same archiver snapshot as the client.
    `startup` holds the seconds until the scheduler file appeared, until every worker had joined,
    and of importing archiver's task modules on every worker (a warm, long-lived cluster: that
    import is paid once per worker, not per archiver command).
    """

    def __init__(self, folder: Path, workers: int, threads: int, timeout: float = 90) -> None:
        from distributed import Client

        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.scheduler_file = folder / "scheduler.json"
        self.log_path = folder / "cluster.log"
        self._log = self.log_path.open("ab")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.startup: dict[str, float] = {}
        self.stopped_in = 0.0
        # as tests/support/daskcluster.py: a non-daemonic worker process; a task re-run when its worker dies
        env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
               "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "3"}
        started = time.perf_counter()
        try:
            # --no-dashboard still serves /health and /metrics, on all interfaces unless told otherwise
            http = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
            self._spawn([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", *http,
                         "--scheduler-file", str(self.scheduler_file)], folder, env)
            deadline = time.monotonic() + timeout
            while not self.scheduler_file.exists() or not self.scheduler_file.read_text().strip():
                if time.monotonic() > deadline or self.procs[0].poll() is not None:
                    raise RuntimeError(f"the Dask scheduler did not start (see {self.log_path})")
                time.sleep(0.05)
            self.startup["scheduler"] = time.perf_counter() - started
            for _ in range(workers):
                self._spawn([str(BIN / "dask"), "worker", "--scheduler-file", str(self.scheduler_file), "--host",
                             "127.0.0.1", "--nthreads", str(threads), *http, "--local-directory", str(folder)],
                            folder, env)  # its scratch space in ours, not /tmp
            with Client(scheduler_file=str(self.scheduler_file), timeout=30, set_as_default=False) as client:
                client.wait_for_workers(workers, timeout=timeout)
                self.startup["workers"] = time.perf_counter() - started - self.startup["scheduler"]
                t0 = time.perf_counter()
                import cloudpickle  # the workers cannot import benchlib: send _import_archiver by value

                cloudpickle.register_pickle_by_value(sys.modules[__name__])
                self.archiver_files = set(client.run(_import_archiver).values())
                self.startup["imports"] = time.perf_counter() - t0
        except BaseException:
            self.stop()
            raise
        self.startup["total"] = time.perf_counter() - started

    def _spawn(self, cmd: list[str], folder: Path, env: dict[str, str]) -> None:
        self.procs.append(subprocess.Popen(cmd, cwd=folder, stdout=self._log, stderr=self._log,
                                           stdin=subprocess.DEVNULL, env=env, start_new_session=True))

    def cpu(self) -> float:
        """CPU seconds used so far by the scheduler, the nannies and the worker processes."""
        return sum(proc_cpu_seconds(pid) for proc in self.procs for pid in tree(proc.pid))

    def stop(self) -> None:
        started = time.perf_counter()
        for proc in reversed(self.procs):  # workers first: they would try to reconnect to a gone scheduler
            with contextlib.suppress(ProcessLookupError):  # the session we started for it, even if its
                os.killpg(proc.pid, signal.SIGTERM)  # leader has ended (a worker left behind by its nanny)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.procs = []
        self._log.close()
        self.stopped_in = time.perf_counter() - started

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _import_archiver() -> str:
    """Run on every worker: import what capture and index tasks unpickle; where archiver came from."""
    import archiver._dask
    import archiver.index.build

    return str(Path(archiver._dask.__file__).parent)


# --- statistics and tables ----------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(a: float, b: float, digits: int = 2) -> str:
    if not b or a != a or b != b:
        return "n/a"
    return f"{a / b:.{digits}f}x"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "not met")


@contextlib.contextmanager
def fresh_dir(path: Path, keep: bool = False) -> Iterator[Path]:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


PYWB_CONFIG = """\
collections_root: collections
archive_paths: archive
index_paths: indexes
framed_replay: true
enable_memento: true
"""


def archiver_root(path: Path, **settings: object) -> Path:
    """An archive root with a config.yaml whose archiver: section holds `settings`."""
    path.mkdir(parents=True, exist_ok=True)
    lines = [PYWB_CONFIG, "archiver:"]
    for key, value in settings.items():
        rendered = ("true" if value else "false") if isinstance(value, bool) else str(value)
        lines.append(f"  {key}: {rendered}")
    (path / "config.yaml").write_text("\n".join(lines) + "\n")
    return path
