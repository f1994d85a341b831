"""Baseline B for the capture benchmark: N threads of `requests`, each writing its own gzip WARC
with warcio's WARCWriter (a response and a request record per URL).

    baseline_requests.py URLS.txt OUTDIR [--threads 32] [--max-seconds 600]

Prints one JSON line: {"fetched": ..., "errors": ..., "bytes": ...}. Exit 1 if any URL failed.
"""

from __future__ import annotations

import argparse
import io
import json
import queue
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def worker(number: int, todo: queue.SimpleQueue[str], outdir: Path, deadline: float, totals: dict[str, int],
           lock: threading.Lock) -> None:
    session = requests.Session()
    session.trust_env = False
    fetched = errors = size = 0
    with (outdir / f"baseline-{number:02d}.warc.gz").open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        while time.monotonic() < deadline:
            try:
                url = todo.get_nowait()
            except queue.Empty:
                break
            try:
                response = session.get(url, stream=True, timeout=30)
                body = response.raw.read(decode_content=False)
            except requests.RequestException:
                errors += 1
                continue
            raw = response.raw._original_response
            protocol = "HTTP/1.0" if raw is not None and raw.version == 10 else "HTTP/1.1"
            status = StatusAndHeaders(f"{response.status_code} {response.reason}",
                                      list(response.raw.headers.items()), protocol=protocol)
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), length=len(body),
                                               http_headers=status)
            writer.write_record(record)
            parts = urlsplit(url)
            request_headers = [("Host", parts.netloc), *response.request.headers.items()]
            path = parts.path + ("?" + parts.query if parts.query else "")
            req = writer.create_warc_record(url, "request", payload=io.BytesIO(b""), length=0,
                                            http_headers=StatusAndHeaders(f"GET {path} HTTP/1.1", request_headers,
                                                                          is_http_request=True))
            req.rec_headers.add_header("WARC-Concurrent-To", record.rec_headers.get_header("WARC-Record-ID"))
            writer.write_record(req)
            size += len(body)
            if response.status_code == 200:
                fetched += 1
            else:
                errors += 1
    with lock:
        totals["fetched"] += fetched
        totals["errors"] += errors
        totals["bytes"] += size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("urls", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for line in args.urls.read_text().split():
        todo.put(line)
    deadline = time.monotonic() + args.max_seconds
    totals = {"fetched": 0, "errors": 0, "bytes": 0}
    lock = threading.Lock()
    threads = [threading.Thread(target=worker, args=(n, todo, args.outdir, deadline, totals, lock))
               for n in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(totals))
    raise SystemExit(1 if totals["errors"] or not todo.empty() else 0)


if __name__ == "__main__":
    main()
