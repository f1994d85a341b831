"""Capture on a real Dask cluster (a scheduler and two worker processes on 127.0.0.1), with a worker
SIGKILLed in the middle of a batch; and the same seeds captured locally give the same rows."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from archiver.collection import OPEN_SUFFIX, Collection
from archiver.config import load
from archiver.export import export
from archiver.index.metadata import Store

from .conftest import FAST_YAML
from .support.cdnsite import SHARED, CdnSite, own_requisites
from .support.daskcluster import dask_cluster
from .support.newsite import NewsSite, seed_document
from .support.warcs import check_with_third_party_tools

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with dask_cluster(tmp_path_factory.mktemp("dask")) as scheduler_file:
        yield scheduler_file


@pytest.fixture(scope="module")
def sites() -> Iterator[list[NewsSite]]:
    servers = [NewsSite() for _ in range(4)]
    yield servers
    for server in servers:
        server.stop()


def make_root(path: Path, sites: list[NewsSite], extra: str = "") -> tuple[Path, list[str]]:
    """Seeds over eight hosts (four servers, each as 127.0.0.1 and as localhost), slow pages."""
    (path / "seeds").mkdir(parents=True)
    # one seed at a time per host, batches of 6 seeds: each batch takes about a second
    (path / "config.yaml").write_text(FAST_YAML + "  host_concurrency: 1\n  batch_size: 6\n" + extra)
    hosts = [base for site in sites for base in (site.url, site.url.replace("127.0.0.1", "localhost"))]
    urls = [f"{hosts[n % len(hosts)]}/slow/{n:03d}" for n in range(96)]
    for n, url in enumerate(urls):
        (path / "seeds" / f"{n:03d}.txt").write_text(seed_document(url, f"第{n}篇", 1696553101000 + n))
    return path, urls


def start_capture(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "archiver", "--root", str(root), "capture", "--allow-private",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True)


def kill_a_worker_mid_batch(scheduler_file: Path, capture: subprocess.Popen[str]) -> str:
    """SIGKILL the worker process running a capture batch, once it has been at it for a while."""
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout=30) as client:
        pids = client.run(os.getpid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and capture.poll() is None:
            busy = {worker: [k for k in keys if str(k).startswith("archiver-capture-")]
                    for worker, keys in client.processing().items()}
            busy = {worker: keys for worker, keys in busy.items() if keys}
            if busy:
                worker, keys = sorted(busy.items())[0]
                time.sleep(0.4)  # into the batch: some seeds written, others not yet
                os.kill(pids[worker], signal.SIGKILL)
                return str(keys[0])
            time.sleep(0.05)
    raise AssertionError("no capture batch was seen running on the cluster")


def test_capture_on_a_cluster_survives_a_killed_worker(tmp_path: Path, sites: list[NewsSite],
                                                       cluster: Path) -> None:
    root, urls = make_root(tmp_path / "root", sites)
    capture = start_capture(root, "--cluster", str(cluster))
    killed = kill_a_worker_mid_batch(cluster, capture)
    output, _ = capture.communicate(timeout=180)
    assert capture.returncode == 0, output
    assert f"{len(urls)} captured, 0 failed" in output

    collection = Collection.at(root, "news")
    archive = collection.archive_dir
    assert not list(archive.glob("*" + OPEN_SUFFIX))
    check_with_third_party_tools(archive)  # warcio check and fastwarc check, every file
    with Store(collection.db_path) as store:
        rows = list(store.articles())
    assert sorted(r.url for r in rows) == sorted(urls)  # every seed exactly once
    assert all(not r.error and r.status == 200 for r in rows)
    for row in rows:  # every row points at its record
        with (archive / row.warc_file).open("rb") as fh:
            fh.seek(row.warc_offset or 0)
            head = gzip.decompress(fh.read(row.warc_length or 0))
        assert f"WARC-Target-URI: {row.url}\r\n".encode() in head and b"WARC-Type: response" in head
    # every page once in the replay index too: the dead attempt's files were removed, not indexed
    keys = Counter(json.loads(line.split(" ", 2)[2])["url"] for line in collection.cdxj_path.read_text().splitlines())
    assert all(keys[url] == 1 for url in urls), {url: keys[url] for url in urls if keys[url] != 1}
    # the killed batch was run again and committed once
    batch = killed.removeprefix("archiver-capture-")
    assert (collection.indexes_dir / "fragments" / f"{batch}.parquet").exists()
    assert len(list(archive.glob(f"archiver-{batch}-*.warc.gz"))) == 1

    # the index rebuilt on the cluster (one task per file, sorted parts merged) is the one capture made
    captured_cdxj = collection.cdxj_path.read_bytes()
    captured_rows = _comparable(root, volatile=())
    rebuilt = subprocess.run(
        [sys.executable, "-m", "archiver", "--root", str(root), "index", "--cluster", str(cluster)],
        capture_output=True, text=True, timeout=180)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"indexed {len(list(archive.glob('*.warc.gz')))} WARC files" in rebuilt.stdout
    assert collection.cdxj_path.read_bytes() == captured_cdxj
    assert _comparable(root, volatile=()) == captured_rows
    assert not list(collection.indexes_dir.glob(".parts-*"))

    # the same seeds captured on this machine give the same rows, apart from times and file names
    local_root, _ = make_root(tmp_path / "local", sites)
    local = start_capture(local_root)
    output, _ = local.communicate(timeout=180)
    assert local.returncode == 0, output
    assert _comparable(root) == _comparable(local_root)


VOLATILE = ("capture_time", "warc_file", "warc_offset", "warc_length", "replay_path", "next_check")


def _comparable(root: Path, volatile: tuple[str, ...] = VOLATILE) -> list[dict[str, object]]:
    out = io.StringIO()
    export(load(root), out, "jsonl")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return sorted(({k: v for k, v in row.items() if k not in volatile} for row in rows), key=lambda r: str(r["url"]))


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path, sites: list[NewsSite]) -> None:
    import socket

    with socket.socket() as sock:  # a port on 127.0.0.1 that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root, _ = make_root(tmp_path / "root", sites[:1])
    capture = subprocess.run(
        [sys.executable, "-m", "archiver", "--root", str(root), "capture", "--allow-private",
         "--cluster", f"tcp://127.0.0.1:{port}"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"})
    assert capture.returncode == 4, capture.stdout + capture.stderr  # the cluster, not the seeds
    assert f"error: cannot connect to the Dask scheduler at tcp://127.0.0.1:{port}" in capture.stderr
    assert "Traceback" not in capture.stderr


@pytest.mark.parametrize("where", ["cluster", "processes"])
def test_shared_requisites_are_fetched_once_by_workers_anywhere(tmp_path: Path, cluster: Path, where: str) -> None:
    """Articles of two hosts (two shards) run on different workers and share one static host: each
    shared requisite is fetched once all the same, because only the capture process decides."""
    cdn = CdnSite()
    try:
        (tmp_path / "seeds").mkdir()
        (tmp_path / "config.yaml").write_text(FAST_YAML + "  batch_size: 2\n  batch_wait: 0.05\n"
                                              + ("  processes: 2\n" if where == "processes" else ""))
        urls = [cdn.article(n).replace("127.0.0.1", "localhost") if n % 2 else cdn.article(n) for n in range(16)]
        (tmp_path / "seeds" / "urls.txt").write_text("".join(u + "\n" for u in urls))
        args = ["--cluster", str(cluster)] if where == "cluster" else []
        done = subprocess.run([sys.executable, "-m", "archiver", "--root", str(tmp_path), "capture", "--allow-private",
                               *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        assert all(cdn.static_hits[path] == 1 for path in SHARED), cdn.static_hits
        assert all(cdn.static_hits[path] == 1 for n in range(16) for path in own_requisites(n))
        out = io.StringIO()
        export(load(tmp_path), out, "jsonl")
        counts = {(row["requisites"], row["requisites_failed"], row["requisites_skipped"])
                  for row in map(json.loads, out.getvalue().splitlines())}
        assert counts == {(len(SHARED) + len(own_requisites(0)), 0, 0)}
        # checked again the same way, sharded by host: every page unchanged, no shared file fetched again
        pages = sum(cdn.news_hits.values())
        checked = subprocess.run([sys.executable, "-m", "archiver", "--root", str(tmp_path), "recapture",
                                  "--allow-private", "--older-than", "0", "--all", *args], capture_output=True,
                                 text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert checked.returncode == 0, checked.stderr
        assert "16 articles checked: 16 unchanged" in checked.stderr
        assert sum(cdn.news_hits.values()) == 2 * pages and all(cdn.static_hits[p] == 1 for p in SHARED)
    finally:
        cdn.stop()
