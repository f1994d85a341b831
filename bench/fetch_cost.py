"""CPU a fetch costs, by HTTP client: the part of capture that no other change reached.

    fetch_cost.py CLIENT URL_FILE --threads 64

Fetches every URL of URL_FILE (one a line) with CLIENT over `--threads` threads and prints one
JSON line: requests, bytes, wall seconds, CPU seconds of this process (user + system) and CPU
milliseconds a request. Every body is read whole and hashed with SHA-1 (as capture does for the
payload digest), so the clients do the same work. Clients:

* `archiver`: archiver.fetch.client.Fetcher (libcurl through pycurl, address guard, deadlines): what
  capture uses;
* `requests`: one requests.Session a thread;
* `pycurl`: one libcurl easy handle a thread (no proxy from the environment, no content decoding).

Run by `bench/run.py fetch` against the loopback site, the clients alternating.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

WARM = 40  # requests before the measured ones: connections open, imports and caches warm


def archiver_client() -> Callable[[str], int]:
    from archiver.config import Config
    from archiver.fetch.client import Fetcher

    cfg = Config(root=Path("."), allow_private=True, host_concurrency=256, host_delay=0)
    fetcher = Fetcher(cfg, lambda: datetime.now(UTC))

    def get(url: str) -> int:
        exchange = fetcher.get(url)  # reads the body and computes its SHA-1 itself
        try:
            return exchange.body_length
        finally:
            exchange.close()

    return get


def requests_client() -> Callable[[str], int]:
    import requests

    local = threading.local()

    def get(url: str) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.trust_env = False
        digest = hashlib.sha1()
        size = 0
        with session.get(url, stream=True, timeout=30) as response:
            for chunk in response.raw.stream(65536, decode_content=False):
                digest.update(chunk)
                size += len(chunk)
        return size

    return get


def pycurl_client() -> Callable[[str], int]:
    import pycurl

    local = threading.local()

    def get(url: str) -> int:
        curl = getattr(local, "curl", None)
        if curl is None:
            curl = local.curl = pycurl.Curl()
            curl.setopt(pycurl.PROXY, "")
            curl.setopt(pycurl.TIMEOUT, 30)
            curl.setopt(pycurl.HTTPHEADER, ["Accept: */*", "Accept-Encoding: gzip, deflate"])
        digest = hashlib.sha1()
        sizes = [0]
        lines: list[bytes] = []

        def write(chunk: bytes) -> None:
            digest.update(chunk)
            sizes[0] += len(chunk)

        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.WRITEFUNCTION, write)
        curl.setopt(pycurl.HEADERFUNCTION, lines.append)
        curl.perform()
        curl.getinfo(pycurl.RESPONSE_CODE)
        curl.getinfo(pycurl.PRIMARY_IP)
        return sizes[0]

    return get


CLIENTS = {"archiver": archiver_client, "requests": requests_client, "pycurl": pycurl_client}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("urls", type=Path)
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()
    urls = [u for u in args.urls.read_text().split() if u]
    get = CLIENTS[args.client]()
    for url in urls[:WARM]:
        get(url)
    start, before = time.perf_counter(), os.times()
    with cf.ThreadPoolExecutor(args.threads) as pool:
        size = sum(pool.map(get, urls))
    after, wall = os.times(), time.perf_counter() - start
    cpu = (after.user - before.user) + (after.system - before.system)
    print(json.dumps({"requests": len(urls), "bytes": size, "wall": wall, "cpu": cpu,
                      "cpu_ms_per_request": 1000 * cpu / len(urls)}))


if __name__ == "__main__":
    main()
