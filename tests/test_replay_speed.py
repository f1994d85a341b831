"""`archiver replay` answers keep-alive requests at once; pywb's own `wayback` stalls each one ~40 ms.

wayback's gevent server writes a response in several sends without TCP_NODELAY, so on a keep-alive
connection (what browsers use) the last small send waits for the client's delayed ACK: every request
after the first takes ~48 ms, the server idle meanwhile. archiver's replay server (archiver/replay/server.py)
serves the same pywb app with TCP_NODELAY and reads records in-process. Both are started over the same
root here and measured in the same run, alternating, as a ratio; they must also send the same pages.
"""

from __future__ import annotations

import http.client
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from archiver._process import die_with_parent
from archiver.capture.run import capture
from archiver.collection import Collection
from archiver.config import Config
from archiver.index.metadata import Store
from archiver.init import init
from archiver.replay.launch import replay

from .support.newsite import NewsSite, seed_document
from .support.processes import stop
from .support.replaying import free_port

ARTICLES = {  # page of the test site: (text of its article, charset of the page)
    "/plain.html": ("这是一篇普通的文章。", "utf-8"),
    "/gzip.html": ("这篇文章用 gzip 传输。", "utf-8"),
    "/gbk.html": ("镕字只在 GBK 中。", "gbk"),
    "/chunked.html": ("这篇文章分块传输。", "utf-8"),
    "/slow/first.html": ("延迟五十毫秒。", "utf-8"),
    "/slow/second.html": ("延迟五十毫秒。", "utf-8"),
}
ROUNDS = 4  # alternating archiver and wayback
PER_ROUND = 15  # keep-alive requests per server and round: at most 120 in all
TIME_LIMIT = 90.0  # seconds for all the rounds together; a round stops early past it
WAYBACK = "import sys; from pywb.apps.cli import wayback; sys.exit(wayback())"


@pytest.mark.slow
def test_keep_alive_replay_is_fast_and_serves_what_wayback_serves(tmp_path: Path, cfg: Config,
                                                                  site: NewsSite) -> None:
    init(cfg)
    seeds = cfg.root / "seeds"
    for n, page in enumerate(ARTICLES):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + page, f"t{n}", 1696553101000 + n), "utf-8")
    report = capture(cfg, [str(seeds)])
    assert not report.failures
    with Store(Collection.at(cfg.root, "news").db_path, readonly=True) as store:
        paths = {a.url.removeprefix(site.url): a.replay_path for a in store.articles()}
    assert sorted(paths) == sorted(ARTICLES)
    mp_paths = {page: re.sub(r"^(/news/\d{14})/", r"\1mp_/", path) for page, path in paths.items()}

    with replay(cfg, port=free_port(), log_path=tmp_path / "archiver.log") as archiver, \
            wayback(cfg.root, tmp_path / "wayback.log") as wayback_port:
        ports = {"archiver": archiver.port, "wayback": wayback_port}

        # the same pages: byte for byte but for the server's own address, the article text in each
        for page, path in mp_paths.items():
            text, charset = ARTICLES[page]
            got = {name: fetch(port, path) for name, port in ports.items()}
            assert got["archiver"] == got["wayback"], page
            status, content_type, body = got["archiver"]
            assert status == 200 and content_type.startswith("text/html"), (page, status, content_type)
            assert text.encode(charset) in body, page
            assert b"wbinfo" in body  # rewritten by pywb: the replay banner's script is in the page
        for path in (paths["/plain.html"], "/news/2023mp_/https://not-archived.invalid/"):  # top frame, 404
            assert fetch(archiver.port, path) == fetch(wayback_port, path), path

        # keep-alive latency: one persistent connection per server and round, alternating the order
        latencies: dict[str, list[float]] = {name: [] for name in ports}
        urls = list(mp_paths.values())
        for port in ports.values():  # warm up: templates compiled, indexes read
            keep_alive_latencies(port, urls, len(urls), time.monotonic() + 30)
        deadline = time.monotonic() + TIME_LIMIT
        for round_ in range(ROUNDS):
            order = list(ports) if round_ % 2 == 0 else list(reversed(ports))
            for name in order:
                latencies[name] += keep_alive_latencies(ports[name], urls, PER_ROUND, deadline)
        medians = {name: statistics.median(values) for name, values in latencies.items()}
        print(f"keep-alive mp_ median: archiver {medians['archiver'] * 1000:.1f} ms over "
              f"{len(latencies['archiver'])} requests, wayback {medians['wayback'] * 1000:.1f} ms over "
              f"{len(latencies['wayback'])}")
        assert min(len(values) for values in latencies.values()) >= PER_ROUND
        assert medians["archiver"] < 0.5 * medians["wayback"], medians

    for port in ports.values():  # both servers stopped
        with pytest.raises(OSError):
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_only_the_replay_server_imports_pywb() -> None:
    """pywb monkey-patches the process that imports it with gevent: that must be the replay server's alone."""
    code = (
        "import importlib, pkgutil, sys, archiver\n"
        "for m in pkgutil.walk_packages(archiver.__path__, 'archiver.'):\n"
        "    if m.name not in ('archiver.__main__', 'archiver.replay.server'):\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'pywb', 'gevent'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def fetch(port: int, path: str) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of GET `path` on a new connection, the server's address made neutral."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().replace(f"127.0.0.1:{port}".encode(), b"SERVER")
        return response.status, response.getheader("Content-Type", ""), body
    finally:
        conn.close()


def keep_alive_latencies(port: int, paths: list[str], count: int, deadline: float) -> list[float]:
    """Seconds each of `count` GETs took over one persistent connection (fewer if `deadline` passes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies: list[float] = []
    try:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            conn.request("GET", paths[i % len(paths)])
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - start)
            assert response.status == 200
            assert not response.will_close  # still the same connection
    finally:
        conn.close()
    return latencies


@contextmanager
def wayback(root: Path, log_path: Path) -> Iterator[int]:
    """pywb 2.10.0's own `wayback` over `root`, as archiver ran it before; yields its port."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", WAYBACK, "--bind", "127.0.0.1", "--port", str(port), "--directory", str(root)],
            cwd=root, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=die_with_parent)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answered
            except OSError:
                assert time.monotonic() < deadline, "wayback did not start"
                time.sleep(0.2)
        yield port
    finally:
        stop(process)
